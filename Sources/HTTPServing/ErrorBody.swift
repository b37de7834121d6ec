import Foundation
import Hummingbird
import NIOCore

/// OpenAI's error shape, `{"error":{"message","type","param","code"}}`, which every error answer uses.
public struct ErrorBody: Sendable, Equatable {
    /// Human-readable explanation.
    public var message: String
    /// Category, such as `invalid_request_error` or `server_error`.
    public var type: String
    /// The parameter at fault, if any.
    public var param: String?
    /// Machine-readable code, such as `invalid_api_key`.
    public var code: String?

    /// An error body from its parts.
    public init(message: String, type: String, param: String? = nil, code: String? = nil) {
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// The JSON text, with `param` and `code` as `null` when absent, as OpenAI sends them.
    public var json: String {
        func quoted(_ value: String?) -> String {
            guard let value else { return "null" }
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            // Encoding a String cannot fail.
            return String(decoding: try! encoder.encode(value), as: UTF8.self)
        }
        return "{\"error\":{\"message\":\(quoted(message)),\"type\":\(quoted(type)),"
            + "\"param\":\(quoted(param)),\"code\":\(quoted(code))}}"
    }

    /// A complete response carrying this body.
    public func response(status: HTTPResponse.Status, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}

/// An error a handler throws to answer with `ErrorBody`; the router renders it.
public struct ErrorResponse: HTTPResponseError {
    /// Status to answer with.
    public let status: HTTPResponse.Status
    /// Body to answer with.
    public let body: ErrorBody
    /// Extra headers, such as `WWW-Authenticate` or `Retry-After`.
    public let headers: HTTPFields

    /// An error answer.
    public init(_ status: HTTPResponse.Status, _ body: ErrorBody, headers: HTTPFields = [:]) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        body.response(status: status, headers: headers)
    }
}
