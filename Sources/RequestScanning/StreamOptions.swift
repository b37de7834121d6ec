/// A change to a text: the bytes in `range` replaced by `replacement` (an insertion when it is empty).
public struct TextEdit: Equatable, Sendable {
    public var range: Range<Int>
    public var replacement: [UInt8]
}

/// Reads and rewrites a streamed request's `stream_options` so the upstream reports the stream's usage,
/// leaving every other byte the client sent as it was.
public enum StreamOptions {
    private static let streamMember = Array(#""stream""#.utf8)

    /// The edit that makes `body` ask for usage (`stream_options.include_usage: true`) when it is a JSON
    /// object with `"stream": true` that does not ask already; nil when nothing needs to change or the
    /// body does not read (the `stream_options` that are not an object included).
    public static func requestingUsage(_ body: UnsafeRawBufferPointer) -> TextEdit? {
        // Most requests do not stream: skip the scan when the member cannot be there.
        guard MultipartForm.find(streamMember, in: body, from: 0) != nil else { return nil }
        var scanner = JSONScanner(body)
        var stream: Range<Int>?
        var options: Range<Int>?
        var objectStart: Int?
        do {
            scanner.skipWhitespace()
            objectStart = scanner.index
            try scanner.forEachMember(wholeText: true) { name, value in
                if JSONText.matches(name, "stream", in: body) {
                    stream = value
                } else if JSONText.matches(name, "stream_options", in: body) {
                    options = value
                }
                return true
            }
        } catch {
            return nil
        }
        guard let stream, let objectStart, UnsafeRawBufferPointer(rebasing: body[stream]).elementsEqual("true".utf8)
        else { return nil }
        guard let options else {
            return TextEdit(
                range: objectStart + 1..<objectStart + 1,
                replacement: Array(#""stream_options":{"include_usage":true},"#.utf8))
        }
        guard body[options.lowerBound] == UInt8(ascii: "{") else { return nil }
        var inner = JSONScanner(body, range: options)
        var include: Range<Int>?
        var empty = true
        do {
            try inner.forEachMember(depth: 2) { name, value in
                empty = false
                if JSONText.matches(name, "include_usage", in: body) { include = value }
                return true
            }
        } catch {
            return nil
        }
        if let include {
            guard !UnsafeRawBufferPointer(rebasing: body[include]).elementsEqual("true".utf8) else { return nil }
            return TextEdit(range: include, replacement: Array("true".utf8))
        }
        let text = empty ? #""include_usage":true"# : #""include_usage":true,"#
        return TextEdit(range: options.lowerBound + 1..<options.lowerBound + 1, replacement: Array(text.utf8))
    }

    /// Whether an event's data (after `data:`) is a chunk with an empty `choices` array and a usage object:
    /// the event the upstream adds when asked for usage.
    public static func isUsageOnly(payload: UnsafeRawBufferPointer) -> Bool {
        guard let choices = JSONScanner.valueRange(at: [.member("choices")], in: payload),
            payload[choices.lowerBound] == UInt8(ascii: "["),
            payload[choices.dropFirst().dropLast()].allSatisfy(JSONScanner.isWhitespace)
        else { return false }
        return JSONScanner.usage(in: payload) != nil
    }
}
