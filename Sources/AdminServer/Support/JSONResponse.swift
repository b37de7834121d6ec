import Foundation
import Hummingbird
import NIOCore

/// JSON answers of the admin API: dates as ISO 8601, keys in declaration order.
enum JSONResponse {
    /// `value` encoded as the body of a `status` answer.
    static func make(
        _ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]
    ) throws
        -> Response
    {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.withoutEscapingSlashes]
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(
            status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

/// `{"deleted": true, "id": …}` and similar one-fact answers.
struct Acknowledgement: Encodable {
    /// What was done, such as `deleted` or `revoked`.
    let result: String
    /// The object it was done to.
    let id: String
}
