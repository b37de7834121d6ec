import Foundation
import HTTPTypes
import Hummingbird
import Shared

/// `/api/auth/*`: log in with the admin token to get a session cookie, see the session, log out.
struct AuthRoutes {
    let services: AdminServices

    struct LoginBody: Decodable {
        let adminToken: String
        enum CodingKeys: String, CodingKey { case adminToken = "admin_token" }
    }

    /// What login and `GET /api/auth/session` answer.
    struct SessionView: Encodable {
        let authenticated = true
        let method: String
        let actor: String
        /// Send it as `X-CSRF-Token` with every request that changes something (cookie sessions only).
        @NullEncoded var csrfToken: String?
        @NullEncoded var expiresAt: String?

        enum CodingKeys: String, CodingKey {
            case authenticated, method, actor, csrfToken = "csrf_token", expiresAt = "expires_at"
        }

        init(_ identity: AdminIdentity) {
            actor = identity.actor
            switch identity {
            case .adminToken:
                method = "bearer"
                csrfToken = nil
                expiresAt = nil
            case .session(_, let csrf, let expires):
                method = "session"
                csrfToken = csrf
                expiresAt = ISOTime.format(expires)
            }
        }
    }

    /// The login route, open to everyone (failures throttled per address; the right token always logs in).
    func registerOpen(on api: APIGroup) {
        api.on(.post, "auth/login") { request, context in
            let now = services.now()
            let body = try await JSONBody.decode(LoginBody.self, from: request, context: context)
            guard SecretDigest.constantTimeEquals(body.adminToken, services.adminToken) else {
                throw AdminAuthMiddleware.refuse(client: context.client, now: now, services: services)
            }
            let session = try await services.sessions.create(
                client: context.client, now: now, lifetime: services.sessionLifetime)
            let identity = AdminIdentity.session(
                idHash: SecretDigest.sha256Hex(session.id), csrfToken: session.csrfToken, expiresAt: session.expiresAt)
            let cookie = Cookie(
                name: AdminAuthMiddleware.cookieName, value: session.id,
                maxAge: Int(services.sessionLifetime / 1000), path: "/", secure: Self.overTLS(request), httpOnly: true,
                sameSite: .strict)
            try await services.audit.record(
                AuditEntry(
                    actor: identity.actor, client: context.client, action: "auth.login", target: nil, detail: nil,
                    now: now))
            return try JSONResponse.make(SessionView(identity), headers: [.setCookie: cookie.description])
        }
    }

    /// The session routes, behind authentication.
    func register(on api: APIGroup) {
        api.on(.get, "auth/session") { _, context in
            try JSONResponse.make(SessionView(context.identity ?? .adminToken))
        }
        api.on(.post, "auth/logout") { request, context in
            if case .session(let hash, _, _) = context.identity {
                try await services.sessions.end(idHash: hash)
            }
            let cleared = Cookie(
                name: AdminAuthMiddleware.cookieName, value: "", maxAge: 0, path: "/", secure: Self.overTLS(request),
                httpOnly: true, sameSite: .strict)
            return try JSONResponse.make(
                Acknowledgement(result: "logged_out", id: context.identity?.actor ?? ""),
                headers: [.setCookie: cleared.description])
        }
    }

    /// Whether the request reached us over TLS: the admin server itself speaks plain HTTP, so only a TLS
    /// reverse proxy in front of it can say so, with `X-Forwarded-Proto: https` (or `Forwarded: proto=https`).
    static func overTLS(_ request: Request) -> Bool {
        if let proto = request.headers[HTTPField.Name("X-Forwarded-Proto")!], proto.lowercased() == "https" {
            return true
        }
        if let forwarded = request.headers[HTTPField.Name("Forwarded")!] {
            return forwarded.lowercased().contains("proto=https")
        }
        return false
    }
}
