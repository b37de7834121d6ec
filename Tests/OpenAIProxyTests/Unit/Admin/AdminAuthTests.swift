import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Admin API authentication")
struct AdminAuthTests {
    /// Routes anyone may call.
    static let open: Set<String> = [
        "GET /healthz", "GET /api/openapi.json", "POST /api/auth/login",
        "GET /", "GET /assets/{file}", "GET /vendor/bootstrap5/{path}", "GET /vendor/chart.js/{path}",
    ]
    /// Routes that take the admin bearer token only (tested in MetricsRoutesTests).
    static let bearerOnly: Set<String> = ["GET /metrics"]
    /// GET requests that change state: refused to cookie sessions (which send no CSRF token with a GET).
    static let changingGets = ["/api/models?refresh=true"]

    /// `METHOD /path` as a method and a concrete URI.
    static func concrete(_ route: String) -> (HTTPRequest.Method, String) {
        let parts = route.split(separator: " ", maxSplits: 1)
        let uri = String(parts[1]).replacingOccurrences(of: "{id}", with: "1")
            .replacingOccurrences(of: "{model_name}", with: "gpt-test")
        return (HTTPRequest.Method(String(parts[0]))!, uri)
    }

    static func cookie(_ id: String) -> HTTPFields { [.cookie: "\(AdminAuthMiddleware.cookieName)=\(id)"] }

    @Test("every protected route: no credential, a wrong token, an expired session → 401; cookie without CSRF → 403")
    func matrix() async throws {
        let harness = try AdminHarness()
        _ = try await harness.test.keys.add(name: "k", value: "sk-matrix-secret-0123456789")
        _ = AdminServer.buildRouter(harness.services)
        let routes = harness.services.routes.all.filter { !Self.open.contains($0) && !Self.bearerOnly.contains($0) }
        #expect(routes.contains("POST /api/models/refresh"))
        #expect(routes.count > 30)
        let body = #"{"name":"x","key_value":"sk-new-value-0123456789"}"#
        try await harness.run { client in
            for route in routes {
                let (method, uri) = Self.concrete(route)
                let none = try await client.call(method, uri, json: body, headers: [:])
                #expect(none.status == .unauthorized, "\(route) without credentials")
                #expect(none.object.keys.sorted() == ["error"], "\(route) answered data")

                let wrong = try await client.call(
                    method, uri, json: body, headers: [.authorization: "Bearer nope-nope-nope"])
                #expect(wrong.status == .unauthorized, "\(route) with a wrong token")
                #expect(!wrong.text.contains("sk-matrix"))
                harness.clock.advance(seconds: 61)  // keep clear of the failed-login throttle

                let expiring = try await harness.services.sessions.create(
                    client: "t", now: harness.clock.now, lifetime: 1000)
                harness.clock.advance(seconds: 2)
                let expired = try await client.call(method, uri, json: body, headers: Self.cookie(expiring.id))
                #expect(expired.status == .unauthorized, "\(route) with an expired session")
                #expect(expired.errorCode == "session_expired")

                let unknown = try await client.call(method, uri, json: body, headers: Self.cookie("made-up-session"))
                #expect(unknown.status == .unauthorized, "\(route) with an unknown session")

                if AdminAuthMiddleware.changes(method) {
                    let live = try await harness.services.sessions.create(
                        client: "t", now: harness.clock.now, lifetime: 3_600_000)
                    var headers = Self.cookie(live.id)
                    let noCSRF = try await client.call(method, uri, json: body, headers: headers)
                    #expect(noCSRF.status == .forbidden, "\(route) cookie without CSRF token")
                    #expect(noCSRF.errorCode == "csrf_token_invalid")
                    #expect(noCSRF.object.keys.sorted() == ["error"])
                    headers[AdminAuthMiddleware.csrfHeader] = "wrong-csrf"
                    let wrongCSRF = try await client.call(method, uri, json: body, headers: headers)
                    #expect(wrongCSRF.status == .forbidden, "\(route) cookie with a wrong CSRF token")
                }
            }
            for uri in Self.changingGets {
                let live = try await harness.services.sessions.create(
                    client: "t", now: harness.clock.now, lifetime: 3_600_000)
                var headers = Self.cookie(live.id)
                headers[AdminAuthMiddleware.csrfHeader] = live.csrfToken
                let answer = try await client.call(.get, uri, headers: headers)
                #expect(answer.status == .forbidden, "GET \(uri) from a cookie session")
                #expect(answer.object.keys.sorted() == ["error"])
            }
        }
    }

    @Test(
        "login sets an HttpOnly SameSite=Strict cookie; the session reads, writes with its CSRF token, expires, logs out"
    )
    func loginSession() async throws {
        let harness = try AdminHarness()
        try await harness.run { client in
            let wrong = try await client.call(.post, "/api/auth/login", json: #"{"admin_token":"wrong"}"#, headers: [:])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.setCookie] == nil)
            let missing = try await client.call(.post, "/api/auth/login", json: #"{}"#, headers: [:])
            #expect(missing.status == .badRequest)
            #expect(missing.errorParam == "admin_token")

            let login = try await client.call(
                .post, "/api/auth/login", json: #"{"admin_token":"\#(AdminHarness.adminToken)"}"#, headers: [:])
            #expect(login.status == .ok)
            let setCookie = try #require(login.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Strict"))
            #expect(!setCookie.contains("Secure"))
            #expect(setCookie.contains("Max-Age=43200"))
            let sessionID = try #require(
                setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last.map(String.init))
            let csrf = try #require(login.object["csrf_token"] as? String)
            #expect(login.object["method"] as? String == "session")

            let stored = try await harness.test.database.pool.read { db in
                try String.fetchAll(db, sql: "SELECT id_hash FROM admin_sessions")
            }
            #expect(stored == [SecretDigest.sha256Hex(sessionID)], "only the session id's hash is stored")

            var headers = AdminAuthTests.cookie(sessionID)
            #expect(try await client.call(.get, "/api/keys", headers: headers).status == .ok)
            let who = try await client.call(.get, "/api/auth/session", headers: headers)
            #expect(who.object["actor"] as? String == "session:\(SecretDigest.sha256Hex(sessionID).prefix(8))")
            headers[AdminAuthMiddleware.csrfHeader] = csrf
            let created = try await client.call(
                .post, "/api/models", json: #"{"model_name":"gpt-test"}"#, headers: headers)
            #expect(created.status == .created)
            let audit = try await client.call(.get, "/api/audit?action=model.create", headers: headers)
            let entries = try #require(audit.object["data"] as? [[String: Any]])
            #expect(entries.first?["actor"] as? String == "session:\(SecretDigest.sha256Hex(sessionID).prefix(8))")

            let logout = try await client.call(.post, "/api/auth/logout", headers: headers)
            #expect(logout.status == .ok)
            #expect(logout.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await client.call(.get, "/api/keys", headers: headers).status == .unauthorized)

            let tls = try await client.call(
                .post, "/api/auth/login", json: #"{"admin_token":"\#(AdminHarness.adminToken)"}"#,
                headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"])
            #expect(tls.headers[.setCookie]?.contains("Secure") == true)
            let later = try #require(
                tls.headers[.setCookie]?.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last
                    .map(String.init))
            harness.clock.advance(seconds: 12 * 3600 + 1)
            let expired = try await client.call(.get, "/api/keys", headers: AdminAuthTests.cookie(later))
            #expect(expired.status == .unauthorized)
            #expect(expired.errorCode == "session_expired")
        }
    }

    @Test("5 failed logins per minute from one address → 429 for wrong tokens; the right token still gets in")
    func throttle() async throws {
        let harness = try AdminHarness()
        try await harness.run { client in
            for _ in 0..<3 {
                let answer = try await client.call(
                    .post, "/api/auth/login", json: #"{"admin_token":"guess"}"#, headers: [:])
                #expect(answer.status == .unauthorized)
            }
            for _ in 0..<2 {
                let answer = try await client.call(.get, "/api/keys", headers: [.authorization: "Bearer guess"])
                #expect(answer.status == .unauthorized)
            }
            let blocked = try await client.call(
                .post, "/api/auth/login", json: #"{"admin_token":"guess-again"}"#, headers: [:])
            #expect(blocked.status == .tooManyRequests)
            #expect(blocked.errorCode == "too_many_login_attempts")
            #expect(blocked.headers[.retryAfter] == "60")
            #expect(blocked.object.keys.sorted() == ["error"])
            let wrongBearer = try await client.call(.get, "/api/keys", headers: [.authorization: "Bearer guess"])
            #expect(wrongBearer.status == .tooManyRequests)

            // Throttled address, right token: the operator behind the same proxy address is not locked out.
            let right = #"{"admin_token":"\#(AdminHarness.adminToken)"}"#
            #expect(try await client.call(.post, "/api/auth/login", json: right, headers: [:]).status == .ok)
            #expect(try await client.call(.get, "/api/keys").status == .ok)
            // A success does not reset the count: the next wrong guess is still refused with 429.
            let after = try await client.call(.get, "/api/keys", headers: [.authorization: "Bearer guess"])
            #expect(after.status == .tooManyRequests)
            harness.clock.advance(seconds: 61)
            let later = try await client.call(.get, "/api/keys", headers: [.authorization: "Bearer guess"])
            #expect(later.status == .unauthorized)
        }
        let throttle = LoginThrottle()
        for _ in 0..<5 { throttle.recordFailure(client: "10.0.0.1", now: 0) }
        #expect(throttle.retryAfter(client: "10.0.0.1", now: 30_000) == 30)
        #expect(throttle.retryAfter(client: "10.0.0.2", now: 30_000) == nil, "another address is not throttled")
        #expect(throttle.retryAfter(client: "10.0.0.1", now: 60_001) == nil)
    }

    @Test("the Host allow-list: own address, localhost, loopback, any IP literal and configured names only")
    func hostPolicy() {
        let policy = AdminHostPolicy(
            listen: ListenAddress(host: "127.0.0.1", port: 5000), extra: ["Admin.Example.com", "proxy.test:8443"])
        for allowed in [
            nil, "127.0.0.1:5000", "127.0.0.1", "localhost", "LOCALHOST:1234", "localhost.", "[::1]:5000", "[::1]",
            "10.1.2.3:5000", "admin.example.com", "admin.example.com:443", "proxy.test:8443",
        ] as [String?] {
            #expect(policy.allows(allowed), "\(allowed ?? "no Host")")
        }
        for refused in [
            "evil.example", "evil.example:5000", "localhost.evil.example", "proxy.test", "proxy.test:8444",
            "127.0.0.1.nip.io", "", ":5000", "[::1", "example.com.admin.example.com",
        ] {
            #expect(!policy.allows(refused), "\(refused)")
        }
        let named = AdminHostPolicy(listen: ListenAddress(host: "admin.internal", port: 5000), extra: [])
        #expect(named.allows("admin.internal:5000"))
        #expect(!named.allows("other.internal:5000"))
    }
}
