import HTTPServing
import Hummingbird
import Shared

/// Lets a request through only with `Authorization: Bearer <admin token>`, compared in constant time.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let adminToken: String

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix),
            SecretDigest.constantTimeEquals(String(header.dropFirst(prefix.count)), adminToken)
        else {
            throw ErrorResponse(
                .unauthorized,
                ErrorBody(
                    message: header.isEmpty
                        ? "Admin token required: send 'Authorization: Bearer <admin token>'."
                        : "Incorrect admin token.",
                    type: "authentication_error", code: "invalid_admin_token"),
                headers: [.wwwAuthenticate: "Bearer"])
        }
        return try await next(request, context)
    }
}
