/// Finds a few values in JSON text without decoding the whole document: the `model` of a request and the
/// `usage` counts of an answer. Every request and answer passes through here, so this skims bytes instead
/// of building the tree `JSONDecoder` builds (which cost more than the rest of the request's handling).
///
/// It understands JSON's structure (strings with escapes, nesting) well enough to only ever look at
/// members of the objects it is asked about; malformed input yields nil, never a wrong value.
struct JSONScanner {
    private let bytes: UnsafeRawBufferPointer
    private var index: Int

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        index = 0
    }

    /// The string value of the top-level member `key` (for example `"model"`), when it is a string.
    static func topLevelString(_ key: String, in bytes: UnsafeRawBufferPointer) -> String? {
        var scanner = JSONScanner(bytes)
        let wanted = Array(key.utf8)
        var found: String?
        _ = scanner.forEachMember { scanner, name in
            guard name.elementsEqual(wanted) else { return scanner.skipValue() }
            found = scanner.readStringValue()
            return false
        }
        return found
    }

    /// Where the value of the top-level member `key` lies in `bytes` (its exact text, whatever its kind).
    static func topLevelValueRange(_ key: String, in bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        var scanner = JSONScanner(bytes)
        let wanted = Array(key.utf8)
        var found: Range<Int>?
        _ = scanner.forEachMember { scanner, name in
            guard name.elementsEqual(wanted) else { return scanner.skipValue() }
            let start = scanner.index
            guard scanner.skipValue() else { return false }
            found = start..<scanner.index
            return false
        }
        return found
    }

    /// Token counts from the top-level `usage` object, or from `response.usage` (Responses API events).
    static func usage(in bytes: UnsafeRawBufferPointer) -> TokenUsage? {
        var scanner = JSONScanner(bytes)
        var usage: TokenUsage?
        _ = scanner.forEachMember { scanner, name in
            if name.elementsEqual("usage".utf8) {
                usage = scanner.readUsage()
                return usage == nil ? scanner.skipValue() : false
            }
            if name.elementsEqual("response".utf8) {
                _ = scanner.forEachMember { inner, innerName in
                    guard innerName.elementsEqual("usage".utf8) else { return inner.skipValue() }
                    usage = inner.readUsage()
                    return false
                }
                return usage == nil
            }
            return scanner.skipValue()
        }
        return usage
    }

    // MARK: - Structure

    /// Calls `body` for each member of the object at the cursor with the member's name (raw bytes between
    /// the quotes) and the cursor on its value; `body` consumes the value and returns false to stop.
    /// Returns false when the input is not an object or is malformed.
    private mutating func forEachMember(
        _ body: (inout JSONScanner, UnsafeRawBufferPointer.SubSequence) -> Bool
    )
        -> Bool
    {
        skipWhitespace()
        guard consume(UInt8(ascii: "{")) else { return false }
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return true }
        while true {
            skipWhitespace()
            guard let (start, end, _) = readStringBounds() else { return false }
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { return false }
            skipWhitespace()
            guard body(&self, bytes[start..<end]) else { return false }
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "}"))
        }
    }

    /// Skips one value of any kind; false when malformed.
    private mutating func skipValue() -> Bool {
        skipWhitespace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return readStringBounds() != nil
        case UInt8(ascii: "{"):
            return forEachMember { scanner, _ in scanner.skipValue() }
        case UInt8(ascii: "["):
            index += 1
            skipWhitespace()
            if consume(UInt8(ascii: "]")) { return true }
            while true {
                guard skipValue() else { return false }
                skipWhitespace()
                if consume(UInt8(ascii: ",")) { continue }
                return consume(UInt8(ascii: "]"))
            }
        default:
            // Numbers, true, false, null: up to the next delimiter.
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]")
                    || Self.isWhitespace(byte)
                {
                    break
                }
                index += 1
            }
            return index > start
        }
    }

    /// The bounds of the string at the cursor (without quotes), and whether it holds escapes.
    private mutating func readStringBounds() -> (start: Int, end: Int, escaped: Bool)? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = index
        var escaped = false
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                let end = index
                index += 1
                return (start, end, escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                index += 2
            default:
                index += 1
            }
        }
        return nil
    }

    /// A string value without escapes (model names have none); nil for other values or escaped strings.
    private mutating func readStringValue() -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\""),
            let (start, end, escaped) = readStringBounds(), !escaped
        else { return nil }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// The counts of a `usage` object at the cursor; nil when it is not an object (`null`, say).
    private mutating func readUsage() -> TokenUsage? {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        var prompt: Int?
        var completion: Int?
        var total: Int?
        let complete = forEachMember { scanner, name in
            if name.elementsEqual("prompt_tokens".utf8) || name.elementsEqual("input_tokens".utf8) {
                prompt = scanner.readInteger()
            } else if name.elementsEqual("completion_tokens".utf8) || name.elementsEqual("output_tokens".utf8) {
                completion = scanner.readInteger()
            } else if name.elementsEqual("total_tokens".utf8) {
                total = scanner.readInteger()
            } else {
                return scanner.skipValue()
            }
            return true
        }
        guard complete, prompt != nil || completion != nil || total != nil else { return nil }
        return TokenUsage(
            promptTokens: prompt, completionTokens: completion,
            totalTokens: total ?? prompt.map { $0 + (completion ?? 0) })
    }

    /// A non-negative integer at the cursor; nil (value skipped) for anything else.
    private mutating func readInteger() -> Int? {
        skipWhitespace()
        var value = 0
        let start = index
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            value = product + Int(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        guard index > start else {
            _ = skipValue()
            return nil
        }
        return value
    }

    // MARK: - Bytes

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, Self.isWhitespace(bytes[index]) { index += 1 }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\t")
    }
}
