import HTTPServing
import Hummingbird

/// Answers 421 with `{"error":{…}}` to a request whose `Host` the admin server does not answer
/// (`AdminHostPolicy`), before any route runs.
struct AdminHostMiddleware: RouterMiddleware {
    let policy: AdminHostPolicy

    func handle(
        _ request: Request, context: AdminRequestContext,
        next: (Request, AdminRequestContext) async throws -> Response
    ) async throws -> Response {
        guard policy.allows(request.head.authority) else {
            throw ErrorResponse(
                .misdirectedRequest,
                ErrorBody(
                    message:
                        "This admin server does not answer for this Host; add it to OPENAI_PROXY_ADMIN_HOSTS "
                        + "if it is yours.",
                    type: "invalid_request_error", code: "host_not_allowed"))
        }
        return try await next(request, context)
    }
}
