import Foundation
import HTTPServing
import Hummingbird
import NIOCore

/// Reading JSON request bodies with one field-level message for every way they can be wrong.
enum JSONBody {
    /// The body decoded as `T`: 413 above the context's upload limit, 400 naming the field for anything else.
    static func decode<T: Decodable>(
        _ type: T.Type, from request: Request, context: AdminRequestContext
    ) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: context.maxUploadSize)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit: context.maxUploadSize)
        }
        let bytes = Data(buffer.readableBytesView)
        guard !bytes.isEmpty else { throw APIError.invalidBody("A JSON object body is required.") }
        guard String(data: bytes, encoding: .utf8) != nil else {
            throw APIError.invalidBody("The body is not valid UTF-8.")
        }
        do {
            return try JSONDecoder().decode(T.self, from: bytes)
        } catch let error as DecodingError {
            throw describe(error)
        }
    }

    /// One 400 per decoding failure, naming the field by its JSON path.
    static func describe(_ error: DecodingError) -> ErrorResponse {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let keys = codingPath + (last.map { [$0] } ?? [])
            return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return APIError.invalid(path(context.codingPath, key), "is required")
        case .valueNotFound(_, let context):
            return APIError.invalid(path(context.codingPath), "must not be null")
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty { return APIError.invalidBody("The body must be a JSON object.") }
            return APIError.invalid(path(context.codingPath), "must be \(describe(type))")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return APIError.invalidBody("The body is not valid JSON.") }
            return APIError.invalid(path(context.codingPath), context.debugDescription)
        @unknown default:
            return APIError.invalidBody("The body could not be read.")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Bool.Type: return "true or false"
        case is Double.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "of the documented type"
        }
    }
}
