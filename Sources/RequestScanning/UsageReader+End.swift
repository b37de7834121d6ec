/// What reading a whole JSON answer's usage from its end found.
public enum UsageAtEnd: Equatable, Sendable {
    /// The answer writes no `usage` name: the streaming reader would find none either.
    case absent
    /// The top-level `usage`, the same counts the streaming reader finds.
    case found(TokenUsage)
    /// The shortcut cannot be sure: the answer must be read from its start (`consume`, `finish`).
    case unsure
}

/// The bytes of a `usage` name, as written without escapes.
private let usageNamePattern = BytePattern("\"usage\"")

extension UsageReader {
    private static let responsePattern = BytePattern("\"response\"")

    /// The usage of a whole JSON answer (every byte of it, ended as its framing said), read without walking
    /// all of it: OpenAI writes `usage` near the end of its answers, after the long `choices`. The name's bytes
    /// are found by a skipping search, then only what follows them is parsed.
    ///
    /// It gives `.found` only where the streaming reader must find the same: at the first `"usage"` written, the
    /// opening quote is not escaped (so in a well-formed answer it is a string, not text inside one: a client
    /// steers only the text of strings, where every quote is escaped), a `{` or `,` comes before it and a `:`
    /// after it, the answer starts with `{`, no `"response"` name (one a colon follows) comes before it (the
    /// reader would look in that object first), its value holds counts and is within `captureLimit`, and after
    /// it only more members and the `}` that ends the answer follow, so it is a member of the top-level object.
    /// Anything else is `.unsure`, and the answer is read from its start as before.
    public static func usageAtEnd(of answer: UnsafeRawBufferPointer) -> UsageAtEnd {
        // The first `"usage"`: none is written before it, so none comes first for the reader.
        guard let name = usageNamePattern.firstOffset(in: answer) else { return .absent }
        guard !isEscaped(quoteAt: name, in: answer),
            firstNonWhitespace(in: answer) == UInt8(ascii: "{"),
            precedingNonWhitespace(before: name, in: answer).map({ $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "{") })
                == true,
            !namesResponse(in: answer, before: name)
        else { return .unsure }
        var scanner = JSONScanner(answer, range: name + 7..<answer.count)
        scanner.skipWhitespace()
        guard scanner.consume(UInt8(ascii: ":")) else { return .unsure }
        scanner.skipWhitespace()
        let start = scanner.index
        guard let usage = JSONScanner.readUsage(&scanner, in: answer, depth: 2) else { return .unsure }
        scanner.skipWhitespace()
        // The reader keeps the value up to the byte that ends it (its trailing whitespace too), and reads nothing in
        // one longer than this.
        guard scanner.index - start <= captureLimit else { return .unsure }
        do throws(JSONScanError) {
            // Members after it (another `usage` among them would not be read: the reader takes the first).
            while scanner.consume(UInt8(ascii: ",")) {
                scanner.skipWhitespace()
                _ = try scanner.readString()
                scanner.skipWhitespace()
                guard scanner.consume(UInt8(ascii: ":")) else { return .unsure }
                try scanner.skipValue(depth: 1)
                scanner.skipWhitespace()
            }
        } catch {
            return .unsure
        }
        guard scanner.consume(UInt8(ascii: "}")) else { return .unsure }
        scanner.skipWhitespace()
        return scanner.index == answer.count ? .found(usage) : .unsure
    }

    /// Whether `"response"` is written before `end` followed by a colon: a member name (the reader looks into a
    /// top-level `response` object for usage). As a value (`"object":"response"`) it is not.
    private static func namesResponse(in bytes: UnsafeRawBufferPointer, before end: Int) -> Bool {
        var from = 0
        while let found = responsePattern.firstOffset(in: bytes, from: from, to: end) {
            var position = found + 10
            while position < bytes.count, JSONScanner.isWhitespace(bytes[position]) { position += 1 }
            if position < bytes.count, bytes[position] == UInt8(ascii: ":") { return true }
            from = found + 1
        }
        return false
    }

    /// Whether the quote at `index` follows an odd run of backslashes (it is then text inside a string).
    private static func isEscaped(quoteAt index: Int, in bytes: UnsafeRawBufferPointer) -> Bool {
        var backslashes = 0
        var position = index - 1
        while position >= 0, bytes[position] == UInt8(ascii: "\\") {
            backslashes += 1
            position -= 1
        }
        return backslashes % 2 == 1
    }

    private static func firstNonWhitespace(in bytes: UnsafeRawBufferPointer) -> UInt8? {
        bytes.first { !JSONScanner.isWhitespace($0) }
    }

    private static func precedingNonWhitespace(before index: Int, in bytes: UnsafeRawBufferPointer) -> UInt8? {
        var position = index - 1
        while position >= 0, JSONScanner.isWhitespace(bytes[position]) { position -= 1 }
        return position >= 0 ? bytes[position] : nil
    }
}

extension JSONScanner {
    /// Whether `usage(in:)` may find counts in an event's payload; false only where it cannot, so that most
    /// events of a stream (a chat chunk's `"usage":null`, a delta without usage) are not parsed at all.
    ///
    /// It needs a member name that reads `usage`: written plainly, that is the bytes `"usage"`, a colon and a
    /// value other than `null`; written with escapes, a `\u` somewhere. Neither in the payload: no counts.
    public static func mayHoldUsage(_ payload: UnsafeRawBufferPointer) -> Bool {
        var from = 0
        while let found = usageNamePattern.firstOffset(in: payload, from: from) {
            from = found + 1
            var scanner = JSONScanner(payload, range: found + 7..<payload.count)
            scanner.skipWhitespace()
            // Not followed by a colon: a value or text, not a name.
            guard scanner.consume(UInt8(ascii: ":")) else { continue }
            scanner.skipWhitespace()
            let rest = UnsafeRawBufferPointer(rebasing: payload[scanner.index...])
            // `null` (or a malformed value starting so) adds no counts.
            if !(rest.count >= 4 && rest[0] == UInt8(ascii: "n") && rest[1] == UInt8(ascii: "u")
                && rest[2] == UInt8(ascii: "l") && rest[3] == UInt8(ascii: "l"))
            {
                return true
            }
        }
        var index = 0
        while index + 1 < payload.count {
            if payload[index] == UInt8(ascii: "\\") {
                if payload[index + 1] == UInt8(ascii: "u") { return true }
                index += 2
            } else {
                index += 1
            }
        }
        return false
    }
}
