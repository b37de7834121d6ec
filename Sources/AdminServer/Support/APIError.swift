import HTTPServing
import Hummingbird
import Shared

/// The admin API's client errors, each rendered as OpenAI's `{"error":{…}}` shape.
enum APIError {
    /// 400 for a field or parameter with a bad value; the message names it.
    static func invalid(_ field: String, _ message: String) -> ErrorResponse {
        ErrorResponse(
            .badRequest,
            ErrorBody(
                message: "\(field) \(message)", type: "invalid_request_error", param: field, code: "invalid_value"))
    }

    /// 400 for a body that cannot be read at all (not UTF-8, not JSON, not an object).
    static func invalidBody(_ message: String) -> ErrorResponse {
        ErrorResponse(.badRequest, ErrorBody(message: message, type: "invalid_request_error", code: "invalid_body"))
    }

    /// 404 for an object that does not exist.
    static func notFound(_ message: String, param: String? = nil) -> ErrorResponse {
        ErrorResponse(
            .notFound, ErrorBody(message: message, type: "invalid_request_error", param: param, code: "not_found"))
    }

    /// 409 for a change that clashes with what is stored.
    static func conflict(_ message: String, param: String?, code: String) -> ErrorResponse {
        ErrorResponse(.conflict, ErrorBody(message: message, type: "invalid_request_error", param: param, code: code))
    }

    /// 413 for a body over the upload limit.
    static func tooLarge(limit: Int) -> ErrorResponse {
        ErrorResponse(
            .contentTooLarge,
            ErrorBody(
                message: "Request body is larger than \(limit) bytes.", type: "invalid_request_error",
                code: "request_too_large"))
    }

    /// 502/503 when the upstream or the proxy could not serve an admin request that needs it.
    static func unavailable(_ status: HTTPResponse.Status, _ message: String, code: String) -> ErrorResponse {
        ErrorResponse(status, ErrorBody(message: message, type: "server_error", code: code))
    }

    /// 503 while the shared PostgreSQL database is unreachable: the admin API needs it for every answer.
    static func databaseUnavailable() -> ErrorResponse {
        ErrorResponse(
            .serviceUnavailable,
            ErrorBody(
                message: "The database (PostgreSQL) is unreachable; the admin API answers again once it is back.",
                type: "server_error", code: "database_unavailable"),
            headers: [.retryAfter: "5"])
    }

    /// A store's `InputError` as a 400.
    static func from(_ error: InputError) -> ErrorResponse {
        invalid(error.field, error.message)
    }
}

/// Turns `InputError`s thrown by the stores into 400 answers naming the field.
struct InputErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as InputError {
            throw APIError.from(error)
        }
    }
}
