/// Why a JSON text could not be read.
public enum JSONScanError: Error, Equatable, Sendable {
    /// Not JSON, or cut short.
    case malformed
    /// Nested deeper than `JSONScanner.maximumDepth`.
    case tooDeep
}

/// Skims JSON text for a few values without decoding the whole document. Every request and answer passes
/// through here, so it walks bytes instead of building a tree, and it never recurses: nesting is counted,
/// and input nested deeper than `maximumDepth` is refused rather than followed (a body of a few million
/// `[` once overflowed the worker's stack).
///
/// Offsets in and out are absolute positions in `bytes`.
public struct JSONScanner {
    /// The deepest nesting read: OpenAI's own request shapes stay below a dozen levels.
    public static let maximumDepth = 128

    let bytes: UnsafeRawBufferPointer
    var index: Int
    let end: Int

    /// A scanner over `range` of `bytes` (all of it by default).
    public init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil) {
        self.bytes = bytes
        index = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    /// Calls `body` with the name and value range of each member of the object at the cursor, in order;
    /// `body` returns false to stop early. With `wholeText`, only whitespace may follow the object.
    /// `depth` is the nesting of the object itself (1 for a document's top level).
    public mutating func forEachMember(
        depth: Int = 1, wholeText: Bool = false,
        _ body: (_ name: JSONStringRange, _ value: Range<Int>) throws(JSONScanError) -> Bool
    ) throws(JSONScanError) {
        try forEachMember(depth: depth, wholeText: wholeText, visitingNested: { _, _ in }, body)
    }

    /// `forEachMember(depth:wholeText:_:)` that also calls `nested` with the name and value position of every
    /// member of every object nested inside the members' values, in the same pass.
    @inline(__always)
    public mutating func forEachMember(
        depth: Int = 1, wholeText: Bool = false,
        visitingNested nested: (_ name: JSONStringRange, _ valueStart: Int) -> Void,
        _ body: (_ name: JSONStringRange, _ value: Range<Int>) throws(JSONScanError) -> Bool
    ) throws(JSONScanError) {
        guard depth <= Self.maximumDepth else { throw .tooDeep }
        skipWhitespace()
        guard consume(UInt8(ascii: "{")) else { throw .malformed }
        skipWhitespace()
        if !consume(UInt8(ascii: "}")) {
            while true {
                skipWhitespace()
                let name = try readString()
                skipWhitespace()
                guard consume(UInt8(ascii: ":")) else { throw .malformed }
                skipWhitespace()
                let start = index
                try skipValue(depth: depth, visitingMembers: nested)
                guard try body(name, start..<index) else { return }
                skipWhitespace()
                if consume(UInt8(ascii: ",")) { continue }
                guard consume(UInt8(ascii: "}")) else { throw .malformed }
                break
            }
        }
        if wholeText {
            skipWhitespace()
            guard index == end else { throw .malformed }
        }
    }

    /// Skips one value of any kind inside a container nested `depth` deep, without recursion.
    public mutating func skipValue(depth: Int) throws(JSONScanError) {
        try skipValue(depth: depth, visitingMembers: { _, _ in })
    }

    /// Skips one value as `skipValue(depth:)` does, calling `member` with the name and value position of every
    /// member of every object inside it.
    @inline(__always)
    public mutating func skipValue(
        depth: Int, visitingMembers member: (_ name: JSONStringRange, _ valueStart: Int) -> Void
    ) throws(JSONScanError) {
        var open = ContainerStack()
        while true {
            skipWhitespace()
            guard index < end else { throw .malformed }
            let byte = bytes[index]
            if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                guard depth + open.count < Self.maximumDepth else { throw .tooDeep }
                let isObject = byte == UInt8(ascii: "{")
                index += 1
                skipWhitespace()
                if consume(isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    if try closeFinished(&open, visitingMembers: member) { return }
                    continue
                }
                open.push(isObject: isObject)
                if isObject { member(try skipMemberName(), index) }
                continue
            }
            if byte == UInt8(ascii: "\"") {
                _ = try readString()
            } else {
                try skipScalar()
            }
            if try closeFinished(&open, visitingMembers: member) { return }
        }
    }

    /// After a value: closes the containers that end here; true when no container is left open, false
    /// when another value follows (its member name, in an object, already read).
    @inline(__always)
    private mutating func closeFinished(
        _ open: inout ContainerStack, visitingMembers member: (JSONStringRange, Int) -> Void
    ) throws(JSONScanError) -> Bool {
        while !open.isEmpty {
            skipWhitespace()
            let inObject = open.topIsObject
            if consume(UInt8(ascii: ",")) {
                if inObject { member(try skipMemberName(), index) }
                return false
            }
            guard consume(inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { throw .malformed }
            open.pop()
        }
        return true
    }

    /// Reads a member's name and its colon; the cursor stops at the value.
    private mutating func skipMemberName() throws(JSONScanError) -> JSONStringRange {
        skipWhitespace()
        let name = try readString()
        skipWhitespace()
        guard consume(UInt8(ascii: ":")) else { throw .malformed }
        skipWhitespace()
        return name
    }

    /// The string at the cursor; the cursor moves past its closing quote.
    public mutating func readString() throws(JSONScanError) -> JSONStringRange {
        guard consume(UInt8(ascii: "\"")) else { throw .malformed }
        let start = index
        var escaped = false
        while index < end {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                let range = start..<index
                index += 1
                return JSONStringRange(range: range, escaped: escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                index += 2
            case 0..<0x20:
                throw .malformed
            default:
                index += 1
            }
        }
        throw .malformed
    }

    /// A number, `true`, `false` or `null` at the cursor.
    private mutating func skipScalar() throws(JSONScanError) {
        let start = index
        while index < end {
            let byte = bytes[index]
            if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]")
                || Self.isWhitespace(byte)
            {
                break
            }
            index += 1
        }
        guard Self.isScalar(UnsafeRawBufferPointer(rebasing: bytes[start..<index])) else { throw .malformed }
    }

    private static let literals: [[UInt8]] = [Array("true".utf8), Array("false".utf8), Array("null".utf8)]

    /// Whether `text` is a JSON literal or a number (`-`? digits, then optional fraction and exponent).
    static func isScalar(_ text: UnsafeRawBufferPointer) -> Bool {
        guard let first = text.first else { return false }
        if first >= UInt8(ascii: "a") { return literals.contains { text.elementsEqual($0) } }
        var position = first == UInt8(ascii: "-") ? 1 : 0
        func digits() -> Int {
            let start = position
            while position < text.count, text[position] >= UInt8(ascii: "0"), text[position] <= UInt8(ascii: "9") {
                position += 1
            }
            return position - start
        }
        guard digits() > 0 else { return false }
        if position < text.count, text[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { return false }
        }
        if position < text.count, text[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < text.count, text[position] == UInt8(ascii: "+") || text[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard digits() > 0 else { return false }
        }
        return position == text.count
    }

    // MARK: - Bytes

    mutating func consume(_ byte: UInt8) -> Bool {
        guard index < end, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func skipWhitespace() {
        while index < end, Self.isWhitespace(bytes[index]) { index += 1 }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\t")
    }
}

/// Where a JSON string's text lies (between its quotes), and whether it holds escapes.
public struct JSONStringRange: Equatable, Sendable {
    /// The bytes between the quotes.
    public var range: Range<Int>
    /// Whether a backslash occurs in it, so the raw bytes are not its text.
    public var escaped: Bool
}

/// The kinds of the containers open while skipping a value, one bit each: never more than
/// `JSONScanner.maximumDepth`, so two words hold them and skipping allocates nothing.
struct ContainerStack {
    private var low: UInt64 = 0
    private var high: UInt64 = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    var topIsObject: Bool {
        let bit = count - 1
        return bit < 64 ? low & (1 << UInt64(bit)) != 0 : high & (1 << UInt64(bit - 64)) != 0
    }

    mutating func push(isObject: Bool) {
        precondition(count < 128, "deeper than the scanner's limit")
        if isObject {
            if count < 64 { low |= 1 << UInt64(count) } else { high |= 1 << UInt64(count - 64) }
        } else {
            if count < 64 { low &= ~(1 << UInt64(count)) } else { high &= ~(1 << UInt64(count - 64)) }
        }
        count += 1
    }

    mutating func pop() {
        count -= 1
    }
}
