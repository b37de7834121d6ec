import Foundation
import NIOCore

/// Exact token counts for streams whose client did not ask for them: the request going upstream asks
/// for usage (`stream_options.include_usage`), and the usage-only event this adds at the end of the
/// stream is taken out of what the client receives, so the client sees the stream it asked for.
enum StreamUsage {
    /// Paths whose streams can carry a final usage event when asked.
    static func applies(toUpstreamPath path: String) -> Bool {
        path == "/chat/completions" || path == "/completions"
    }

    private static let streamMember = Array(#""stream""#.utf8)

    /// The body asking for usage, when `body` is a JSON request with `"stream": true` that does not ask for
    /// it already; nil when nothing needs to change (not streamed, usage asked for, not JSON).
    static func requestingUsage(_ body: ByteBuffer) -> ByteBuffer? {
        let bytes = Array(buffer: body)
        // Most requests do not stream: skip the parse when the member cannot be there.
        guard bytes.firstRange(of: streamMember) != nil,
            var object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any],
            (object["stream"] as? Bool) == true
        else { return nil }
        guard let options = object["stream_options"] else {
            // Insert the member at the front, leaving every byte the client sent as it was.
            guard let open = bytes.firstIndex(of: UInt8(ascii: "{")) else { return nil }
            var rewritten = ByteBuffer()
            rewritten.reserveCapacity(bytes.count + 40)
            rewritten.writeBytes(bytes[...open])
            rewritten.writeString(#""stream_options":{"include_usage":true},"#)
            rewritten.writeBytes(bytes[(open + 1)...])
            return rewritten
        }
        guard var fields = options as? [String: Any], (fields["include_usage"] as? Bool) != true else { return nil }
        fields["include_usage"] = true
        object["stream_options"] = fields
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])
        else { return nil }
        return ByteBuffer(bytes: data)
    }

    /// `bytes` (whole events) without the usage-only events (`"choices": []` with a `usage` object).
    static func withoutUsageEvents(_ bytes: ByteBuffer) -> ByteBuffer {
        bytes.withUnsafeReadableBytes { raw -> ByteBuffer in
            var kept = ByteBuffer()
            var start = 0
            var dropped = false
            for index in raw.indices where EventStreamFraming.endsEvent(raw, at: index) {
                let event = UnsafeRawBufferPointer(rebasing: raw[start...index])
                if isUsageOnly(event) {
                    dropped = true
                } else {
                    kept.writeBytes(event)
                }
                start = index + 1
            }
            if start < raw.count { kept.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start...])) }
            return dropped ? kept : bytes
        }
    }

    private static let dataPrefix = Array("data:".utf8)

    /// Whether an event's data is a chunk with no choices and a usage object.
    static func isUsageOnly(_ event: UnsafeRawBufferPointer) -> Bool {
        guard event.starts(with: dataPrefix) else { return false }
        let payload = UnsafeRawBufferPointer(rebasing: event[dataPrefix.count...])
        // The cheap scan first: every other chunk has no usage, or `"usage": null`.
        guard JSONScanner.usage(in: payload) != nil,
            let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any],
            let choices = object["choices"] as? [Any]
        else { return false }
        return choices.isEmpty
    }
}
