/// Finds the usage of a JSON answer while its bytes stream past, one byte at a time: it follows strings
/// and nesting, and keeps only the top-level `usage` value (or `response.usage`), up to `captureLimit`
/// bytes. Memory stays the same whatever the answer's size, and an answer of any size has its usage read.
///
/// Asked to (`readsObject`: the answer to a create call), it also keeps the top-level `id` and `object` strings
/// in the same pass: the object the answer created.
///
/// Member names written with escapes are not recognised (no OpenAI answer writes `usage` that way).
public struct UsageReader {
    /// The most of a `usage` value kept: usage objects are a few hundred bytes, details included.
    public static let captureLimit = 16 << 10

    /// Which member name a string turned out to be.
    private enum Name {
        case other
        case usage
        case response
        case id
        case object
    }

    /// The longest `id` or `object` kept: OpenAI's ids are a few dozen characters.
    static let identityLimit = 256

    private var depth = 0
    private var inString = false
    private var escaped = false
    // Member names are matched as they pass, against "usage" and "response", without keeping them.
    private var readingName = false
    private var nameLength = 0
    private var mayBeUsage = false
    private var mayBeResponse = false
    private var mayBeID = false
    private var mayBeObject = false
    /// The top-level `id` and `object` are read too.
    private let readsObject: Bool
    /// The string value being kept (`id` or `object`), and its bytes so far.
    private var keeping: Name?
    private var kept: [UInt8] = []
    /// The top-level `id` string, when `readsObject`.
    public private(set) var objectID: String?
    /// The top-level `object` string, when `readsObject`.
    public private(set) var objectKind: String?
    private var lastName = Name.other
    private var lastNameDepth = 0
    /// A relevant name and its colon were read: the next byte that is not whitespace starts its value.
    private var pendingValue: Name?
    /// A member name comes next in the top-level object, or in the `response` object.
    private var expectingTopName = false
    private var expectingResponseName = false
    private var inResponse = false
    private var topIsObject = false
    private var capture: [UInt8] = []
    private var capturing = false
    private var captureDepth = 0
    private var captureOverflowed = false
    /// The first usage found with counts in it.
    public private(set) var usage: TokenUsage?

    private static let usageName: StaticString = "usage"
    private static let responseName: StaticString = "response"
    private static let idName: StaticString = "id"
    private static let objectName: StaticString = "object"

    /// A reader at the start of an answer; `readsObject` keeps its top-level `id` and `object` too.
    public init(readsObject: Bool = false) {
        self.readsObject = readsObject
    }

    /// Whether nothing more is to be read: the usage, and when asked the object, were found.
    private var done: Bool {
        usage != nil && (!readsObject || (objectID != nil && objectKind != nil))
    }

    /// Takes the next bytes of the answer.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        guard !done else { return }
        var index = 0
        while index < bytes.count {
            if capturing {
                // The usage value: copied in runs up to the byte that may end it.
                index = captureRun(bytes, from: index)
                if index == bytes.count { return }
                take(bytes[index])
                index += 1
                // Found: nothing after it is read.
                if done { return }
                continue
            } else if inString, readingName, !escaped, nameLength == 0,
                mayBeUsage || mayBeResponse || mayBeID || mayBeObject
            {
                // A member name just opened: matched whole when it ends in these bytes, else byte by byte.
                var end = index
                while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\") {
                    end += 1
                }
                if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                    let name = UnsafeRawBufferPointer(rebasing: bytes[index..<end])
                    nameLength = name.count
                    mayBeUsage = Self.equal(name, Self.usageName)
                    mayBeResponse = Self.equal(name, Self.responseName)
                    mayBeID = mayBeID && Self.equal(name, Self.idName)
                    mayBeObject = mayBeObject && Self.equal(name, Self.objectName)
                    index = end
                }
            } else if inString, !escaped, !readingName {
                // Most of an answer is the text of strings: skip to the next quote or backslash.
                let start = index
                while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
                    index += 1
                }
                if keeping != nil { keep(UnsafeRawBufferPointer(rebasing: bytes[start..<index])) }
                if index == bytes.count { return }
            } else if !inString, depth >= 2, !inResponse, !capturing, pendingValue == nil, lastName == .other {
                // Nested below anything read (`choices`, `message` …): only strings and nesting matter here
                // until the depth is back at 1, so the bytes are stepped over without the reader's full state.
                index = skipNested(bytes, from: index)
                if index == bytes.count { return }
            }
            take(bytes[index])
            index += 1
        }
    }

    /// Copies the captured value's bytes up to the next one that may end it (a `,`, `}` or `]` outside
    /// strings at the value's own depth), following strings and nesting as `take` would; returns that byte's
    /// index, or `bytes.count` when the bytes end first.
    private mutating func captureRun(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        defer {
            let room = Self.captureLimit - capture.count
            if index - start > room { captureOverflowed = true }
            let end = start + min(room, index - start)
            capture.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        }
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else {
                switch byte {
                case UInt8(ascii: "\""):
                    inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ","):
                    if depth == captureDepth { return index }
                    if byte != UInt8(ascii: ",") { depth -= 1 }
                default:
                    break
                }
            }
            index += 1
        }
        return index
    }

    /// The index of the next byte `take` must see (the bracket that closes to depth 1), counting the nesting
    /// and stepping over the strings in between; `bytes.count` when the bytes end first (within a string, the
    /// reader's state says so).
    private mutating func skipNested(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        var depth = depth
        defer { self.depth = depth }
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                // No string down here is a name that matters: stepped over to its closing quote.
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == UInt8(ascii: "\\") {
                        guard index + 1 < bytes.count else {
                            inString = true
                            escaped = true
                            return bytes.count
                        }
                        index += 1
                    }
                    index += 1
                }
                if index == bytes.count {
                    inString = true
                    return index
                }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth <= 2 { return index }
                depth -= 1
            default:
                break
            }
            index += 1
        }
        return index
    }

    /// The usage found, once the answer has ended (a usage value the answer ended in is read as it is).
    public mutating func finish() -> TokenUsage? {
        if capturing { endCapture() }
        return usage
    }

    private mutating func take(_ byte: UInt8) {
        if capturing {
            if !inString, depth == captureDepth, byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") {
                endCapture()
            } else if capture.count < Self.captureLimit {
                capture.append(byte)
            } else {
                captureOverflowed = true
            }
        }
        if inString {
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
                mayBeUsage = false
                mayBeResponse = false
                mayBeID = false
                mayBeObject = false
                // No id is written with escapes: one that is, is not kept.
                if keeping != nil { kept.append(contentsOf: repeatElement(0, count: Self.identityLimit + 1)) }
            } else if byte == UInt8(ascii: "\"") {
                inString = false
                if readingName { endName() }
                if keeping != nil { endKeeping() }
            } else if readingName {
                mayBeUsage = mayBeUsage && nameLength < 5 && Self.usageName.utf8Start[nameLength] == byte
                mayBeResponse = mayBeResponse && nameLength < 8 && Self.responseName.utf8Start[nameLength] == byte
                mayBeID = mayBeID && nameLength < 2 && Self.idName.utf8Start[nameLength] == byte
                mayBeObject = mayBeObject && nameLength < 6 && Self.objectName.utf8Start[nameLength] == byte
                nameLength += 1
            } else if keeping != nil {
                kept.append(byte)
            }
            return
        }
        if JSONScanner.isWhitespace(byte) { return }
        if let pending = pendingValue, byte != UInt8(ascii: ":") {
            pendingValue = nil
            startValue(pending, byte)
        }
        switch byte {
        case UInt8(ascii: "\""):
            inString = true
            readingName = (depth == 1 && expectingTopName) || (depth == 2 && inResponse && expectingResponseName)
            if readingName {
                if depth == 1 { expectingTopName = false } else { expectingResponseName = false }
                nameLength = 0
                mayBeUsage = true
                mayBeResponse = true
                mayBeID = readsObject && depth == 1
                mayBeObject = readsObject && depth == 1
            }
        case UInt8(ascii: ":"):
            if lastNameDepth == depth, lastName != .other { pendingValue = lastName }
            lastName = .other
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if depth == 0 {
                topIsObject = byte == UInt8(ascii: "{")
                expectingTopName = topIsObject
            }
            depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
            if depth <= 1 {
                inResponse = false
                expectingResponseName = false
            }
            if depth < 1 { expectingTopName = false }
        case UInt8(ascii: ","):
            if depth == 1, topIsObject { expectingTopName = true }
            if depth == 2, inResponse { expectingResponseName = true }
        default:
            break
        }
    }

    /// Whether `bytes` are the text of `literal`.
    private static func equal(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        for index in 0..<bytes.count where bytes[index] != literal.utf8Start[index] { return false }
        return true
    }

    private mutating func endName() {
        readingName = false
        lastNameDepth = depth
        if mayBeUsage, nameLength == 5 {
            lastName = .usage
        } else if mayBeResponse, nameLength == 8, depth == 1 {
            lastName = .response
        } else if mayBeID, nameLength == 2, objectID == nil {
            lastName = .id
        } else if mayBeObject, nameLength == 6, objectKind == nil {
            lastName = .object
        } else {
            lastName = .other
        }
    }

    /// The first byte of a `usage` or `response` value.
    private mutating func startValue(_ name: Name, _ byte: UInt8) {
        switch name {
        case .usage:
            capturing = true
            captureDepth = depth
            captureOverflowed = false
            capture.removeAll(keepingCapacity: true)
            capture.append(byte)
        case .response:
            // The object's members (one level down) are read for its `usage`.
            if byte == UInt8(ascii: "{") {
                inResponse = true
                expectingResponseName = true
            }
        case .id, .object:
            // Only a string is kept; its bytes follow the opening quote.
            if byte == UInt8(ascii: "\"") {
                keeping = name
                kept.removeAll(keepingCapacity: true)
            }
        case .other:
            break
        }
    }

    /// Keeps the next bytes of the `id` or `object` string.
    private mutating func keep(_ bytes: UnsafeRawBufferPointer) {
        guard kept.count <= Self.identityLimit else { return }
        kept.append(contentsOf: bytes.prefix(Self.identityLimit + 1 - kept.count))
    }

    /// The `id` or `object` string ended.
    private mutating func endKeeping() {
        defer { keeping = nil }
        guard !kept.isEmpty, kept.count <= Self.identityLimit, let text = String(validating: kept, as: UTF8.self)
        else { return }
        if keeping == .id { objectID = text } else { objectKind = text }
    }

    private mutating func endCapture() {
        capturing = false
        guard !captureOverflowed else { return }
        let found = capture.withUnsafeBytes { bytes in
            JSONScanner.readUsage(0..<bytes.count, in: bytes, depth: captureDepth + 1)
        }
        if usage == nil { usage = found }
    }
}
