import NIOCore
import RequestScanning

/// Exact token counts for streams whose client did not ask for them: the request going upstream asks
/// for usage (`stream_options.include_usage`), and the usage-only event this adds at the end of the
/// stream is taken out of what the client receives, so the client sees the stream it asked for.
enum StreamUsage {
    /// Paths whose streams can carry a final usage event when asked.
    static func applies(toUpstreamPath path: String) -> Bool {
        path == "/chat/completions" || path == "/completions"
    }

    /// The body asking for usage, when `body` is a JSON request with `"stream": true` that does not ask for
    /// it already; nil when nothing needs to change (not streamed, usage asked for, not JSON).
    static func requestingUsage(_ body: ByteBuffer) -> ByteBuffer? {
        body.withUnsafeReadableBytes { bytes -> ByteBuffer? in
            guard let edit = StreamOptions.requestingUsage(bytes) else { return nil }
            var rewritten = ByteBuffer()
            rewritten.reserveCapacity(bytes.count - edit.range.count + edit.replacement.count)
            rewritten.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<edit.range.lowerBound]))
            rewritten.writeBytes(edit.replacement)
            rewritten.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[edit.range.upperBound...]))
            return rewritten
        }
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
        // Usage-only needs counts: an event that cannot hold them is not parsed for its choices.
        return JSONScanner.mayHoldUsage(payload) && StreamOptions.isUsageOnly(payload: payload)
    }
}
