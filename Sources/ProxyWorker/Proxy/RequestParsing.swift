import Foundation
import NIOCore
import Shared

/// What the worker reads from a request: the client token, the path below `/v1`, the model.
enum RequestParsing {
    /// The token in `Bearer <token>`, or nil.
    static func bearerToken(_ header: String?) -> String? {
        guard let header, header.hasPrefixIgnoringASCIICase("bearer ") else { return nil }
        let token = header.dropFirst("bearer ".count).trimmingWhitespace()
        return token.isEmpty ? nil : token
    }

    /// The path below `/v1` (`/v1/chat/completions` → `/chat/completions`), or nil when it is not a clean
    /// `/v1` path (dot segments could escape the upstream's prefix).
    static func upstreamPath(_ path: Substring) -> String? {
        guard path == "/v1" || path.hasPrefix("/v1/") else { return nil }
        let rest = String(path.dropFirst(3))
        // Only a path with a dot or an escape can hold a dot segment.
        guard rest.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "%") }) else { return rest }
        for segment in rest.split(separator: "/", omittingEmptySubsequences: false) {
            let decoded = segment.replacingOccurrences(of: "%2e", with: ".", options: .caseInsensitive)
            if decoded == "." || decoded == ".." { return nil }
        }
        return rest
    }

    /// The `model` of a JSON request body, when it has one.
    static func model(in body: ByteBuffer, contentType: String?) -> String? {
        guard body.readableBytes > 0, contentType?.containsIgnoringASCIICase("json") ?? true else { return nil }
        guard let model = body.withUnsafeReadableBytes({ JSONScanner.topLevelString("model", in: $0) }) else {
            return nil
        }
        return String(model.prefix(200))
    }
}
