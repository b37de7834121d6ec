import Hummingbird
import Logging

/// Renders every error a route throws, including unknown paths, as an `ErrorBody`, so clients always get
/// OpenAI's `{"error":{…}}` shape and never an empty body or a framework-specific one.
public struct ErrorBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    /// A middleware for routers of `Context`.
    public init() {}

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as ErrorResponse {
            return error.body.response(status: error.status, headers: error.headers)
        } catch let error as HTTPError {
            let (type, code) = Self.classify(error.status)
            let message = error.body ?? Self.defaultMessage(error.status, request: request)
            return ErrorBody(message: message, type: type, code: code).response(
                status: error.status, headers: error.headers)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            return ErrorBody(message: "Internal error.", type: "server_error", code: "internal_error")
                .response(status: .internalServerError)
        }
    }

    static func classify(_ status: HTTPResponse.Status) -> (type: String, code: String?) {
        switch status.code {
        case 404: return ("invalid_request_error", "not_found")
        case 405: return ("invalid_request_error", "method_not_allowed")
        case 413: return ("invalid_request_error", "request_too_large")
        case 400..<500: return ("invalid_request_error", nil)
        default: return ("server_error", nil)
        }
    }

    static func defaultMessage(_ status: HTTPResponse.Status, request: Request) -> String {
        status == .notFound
            ? "Unknown path \(request.method.rawValue) \(request.uri.path)."
            : status.reasonPhrase
    }
}
