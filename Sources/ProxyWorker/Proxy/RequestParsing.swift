import Foundation
import NIOCore
import RequestScanning
import Shared

/// What the worker reads from a request: the client token, the path below `/v1`, the model.
enum RequestParsing {
    /// The token in `Bearer <token>`, or nil.
    static func bearerToken(_ header: String?) -> String? {
        guard let header, header.hasPrefixIgnoringASCIICase("bearer ") else { return nil }
        // On the UTF-8 bytes: every request authenticates, and stepping over characters costs several times more.
        let bytes = header.utf8
        var start = bytes.index(bytes.startIndex, offsetBy: 7)
        var end = bytes.endIndex
        while start != end, bytes[start].isASCIIWhitespace { bytes.formIndex(after: &start) }
        while start != end, bytes[bytes.index(before: end)].isASCIIWhitespace { bytes.formIndex(before: &end) }
        return start == end ? nil : String(header[start..<end])
    }

    /// The path below `/v1` (`/v1/chat/completions` → `/chat/completions`), or nil when it is not a clean
    /// `/v1` path (dot segments could escape the upstream's prefix).
    static func upstreamPath(_ path: Substring) -> String? {
        // On the UTF-8 bytes, as for the token: comparing and dropping characters cost more than the rest.
        let bytes = path.utf8
        var restStart = bytes.startIndex
        for expected in "/v1".utf8 {
            guard restStart != bytes.endIndex, bytes[restStart] == expected else { return nil }
            bytes.formIndex(after: &restStart)
        }
        guard restStart == bytes.endIndex || bytes[restStart] == UInt8(ascii: "/") else { return nil }
        let rest = String(path[restStart...])
        // Only a path with a dot or an escape can hold a dot segment.
        guard rest.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "%") }) else { return rest }
        for segment in rest.split(separator: "/", omittingEmptySubsequences: false) {
            let decoded = segment.replacingOccurrences(of: "%2e", with: ".", options: .caseInsensitive)
            if decoded == "." || decoded == ".." { return nil }
        }
        return rest
    }

    /// The model of a request body (JSON, or multipart/form-data), as the upstream will read it.
    static func model(in body: ByteBuffer, contentType: String?) -> RequestModel {
        fields(in: body, contentType: contentType).model
    }

    /// The model and the routing fields of a request body, in one pass.
    static func fields(in body: ByteBuffer, contentType: String?) -> RequestFields {
        guard body.readableBytes > 0 else { return RequestFields(model: .absent) }
        return body.withUnsafeReadableBytes { RequestModelReader.fields($0, contentType: contentType) }
    }

    /// The 400 for a body no request may have, whatever its token: one too deep or malformed to read, or
    /// one naming two models (the upstream may read another than the one checked); nil for the others.
    static func rejection(_ reason: ModelUnreadable) -> (code: String, message: String)? {
        switch reason {
        case .tooDeep:
            return (
                "json_too_deep",
                "The request body nests JSON deeper than \(JSONScanner.maximumDepth) levels, which this proxy does not read."
            )
        case .malformedJSON:
            return ("invalid_json", "The request body is not a valid JSON object.")
        case .duplicateModel:
            return ("duplicate_model", "The request body names the model more than once.")
        case .modelNotString, .malformedMultipart, .unknownContentType:
            return nil
        }
    }
}
