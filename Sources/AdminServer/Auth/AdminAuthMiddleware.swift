import HTTPServing
import HTTPTypes
import Hummingbird
import Shared

/// Lets a request through with `Authorization: Bearer <admin token>` (compared in constant time) or a live
/// session cookie; a cookie request that changes something must also carry the session's CSRF token in
/// `X-CSRF-Token`. Wrong bearer tokens count as failed logins for the client's address; the right token is
/// accepted even while that address is throttled (behind a TLS proxy every operator shares one address).
struct AdminAuthMiddleware: RouterMiddleware {
    let services: AdminServices

    /// The session cookie's name.
    static let cookieName = "opx_session"
    /// The header carrying the CSRF token of a cookie session.
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    func handle(
        _ request: Request, context: AdminRequestContext,
        next: (Request, AdminRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.identity = try await authenticate(request, context: context)
        return try await next(request, context)
    }

    private func authenticate(_ request: Request, context: AdminRequestContext) async throws -> AdminIdentity {
        let now = services.now()
        if let header = request.headers[.authorization] {
            let prefix = "Bearer "
            guard header.hasPrefix(prefix),
                SecretDigest.constantTimeEquals(String(header.dropFirst(prefix.count)), services.adminToken)
            else { throw Self.refuse(client: context.client, now: now, services: services) }
            return .adminToken
        }
        guard let sessionID = request.cookies[Self.cookieName]?.value, !sessionID.isEmpty else {
            throw Self.unauthorized(
                "Admin login required: log in at POST /api/auth/login, or send 'Authorization: Bearer <admin token>'.",
                code: "invalid_admin_token")
        }
        switch try await services.sessions.lookup(id: sessionID, now: now) {
        case .unknown:
            throw Self.unauthorized("Unknown session; log in again.", code: "invalid_session")
        case .expired:
            throw Self.unauthorized("The session has expired; log in again.", code: "session_expired")
        case .valid(let identity):
            if Self.changes(request.method) {
                guard case .session(_, let csrf, _) = identity,
                    let sent = request.headers[Self.csrfHeader], SecretDigest.constantTimeEquals(sent, csrf)
                else {
                    throw ErrorResponse(
                        .forbidden,
                        ErrorBody(
                            message: "Missing or wrong X-CSRF-Token header for this session.",
                            type: "permission_error", code: "csrf_token_invalid"))
                }
            }
            return identity
        }
    }

    /// Whether `method` may change state (and so needs the CSRF token).
    static func changes(_ method: HTTPRequest.Method) -> Bool {
        ![.get, .head, .options].contains(method)
    }

    /// The answer to a wrong admin token from `client`: 429 while the address is throttled, else 401, and the
    /// failure is counted. Only failures are throttled, so a wrong guess never locks out the right token.
    static func refuse(client: String, now: Int64, services: AdminServices) -> ErrorResponse {
        if let retry = services.throttle.retryAfter(client: client, now: now) {
            return throttled(retryAfter: retry)
        }
        services.throttle.recordFailure(client: client, now: now)
        return unauthorized("Incorrect admin token.", code: "invalid_admin_token")
    }

    /// 401 with `WWW-Authenticate: Bearer`.
    static func unauthorized(_ message: String, code: String) -> ErrorResponse {
        ErrorResponse(
            .unauthorized, ErrorBody(message: message, type: "authentication_error", code: code),
            headers: [.wwwAuthenticate: "Bearer"])
    }

    /// 429 with `Retry-After` for an address with too many failed logins.
    static func throttled(retryAfter: Int) -> ErrorResponse {
        ErrorResponse(
            .tooManyRequests,
            ErrorBody(
                message: "Too many failed logins from this address; try again in \(retryAfter) s.",
                type: "rate_limit_error", code: "too_many_login_attempts"),
            headers: [.retryAfter: String(retryAfter)])
    }
}
