/// One step of a path into a JSON document.
public enum JSONPathStep: Sendable {
    /// The member of an object with this name (the last one, when repeated, as most JSON readers take).
    case member(String)
    /// The first element of an array.
    case first
}

extension JSONScanner {
    /// The range of the value at `path` from the top of `bytes`; nil when a step finds nothing or the
    /// text is malformed or too deep where it is read.
    public static func valueRange(at path: [JSONPathStep], in bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        var current = 0..<bytes.count
        var depth = 1
        for step in path {
            var scanner = JSONScanner(bytes, range: current)
            switch step {
            case .member(let key):
                var found: Range<Int>?
                do {
                    try scanner.forEachMember(depth: depth) { name, value in
                        if JSONText.matches(name, key, in: bytes) { found = value }
                        return true
                    }
                } catch {
                    return nil
                }
                guard let found else { return nil }
                current = found
            case .first:
                guard let element = try? scanner.firstElement(depth: depth) else { return nil }
                current = element
            }
            depth += 1
        }
        return current
    }

    /// The decoded text of the string at `path`; nil when there is none or the value is not a string.
    public static func string(at path: [JSONPathStep], in bytes: UnsafeRawBufferPointer) -> String? {
        guard let range = valueRange(at: path, in: bytes) else { return nil }
        return JSONText.decodeString(value: range, in: bytes)
    }

    /// The range of the first element of the array at the cursor (an array nested `depth` deep); nil for
    /// an empty array.
    mutating func firstElement(depth: Int) throws(JSONScanError) -> Range<Int>? {
        guard depth <= Self.maximumDepth else { throw .tooDeep }
        skipWhitespace()
        guard consume(UInt8(ascii: "[")) else { throw .malformed }
        skipWhitespace()
        if index < end, bytes[index] == UInt8(ascii: "]") { return nil }
        let start = index
        try skipValue(depth: depth)
        return start..<index
    }
}
