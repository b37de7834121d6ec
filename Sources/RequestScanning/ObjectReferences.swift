/// The request-body fields that name stored OpenAI objects (`previous_response_id`, `file_id` …): a request
/// naming one of the gateway's objects goes to the key whose account holds it. They are read at the top level
/// and inside any object of the body: `tools[].vector_store_ids`, `tool_resources.code_interpreter.file_ids`,
/// a message's `{"type": "input_file", "file_id": …}`, an attachment's `file_id` …
public enum ObjectReferences {
    /// The member names (and multipart part names) read, each a string, an array of strings, or (for
    /// `conversation`, at the top level) an object with a string `id`.
    public static let fieldNames: [String] = [
        "previous_response_id", "input_file_id", "file_id", "file_ids", "training_file", "validation_file",
        "vector_store_ids", "conversation", "container",
    ]

    /// `fieldNames` as bytes, indexed by length: a member name is compared only with those of its own length.
    private static let fieldNamesByLength: [[[UInt8]]] = {
        var table: [[[UInt8]]] = []
        for name in fieldNames {
            let bytes = Array(name.utf8)
            while table.count <= bytes.count { table.append([]) }
            table[bytes.count].append(bytes)
        }
        return table
    }()

    /// Whether the JSON member name at `name` is one of `fieldNames`.
    static func isField(_ name: JSONStringRange, in bytes: UnsafeRawBufferPointer) -> Bool {
        guard !name.escaped else { return fieldNames.contains { JSONText.matches(name, $0, in: bytes) } }
        // Every member name of every body comes here (`model`, `messages`, `role`, `content` …): by length, then
        // bytes, without going through the names as strings (measured: 400 instructions a name).
        let count = name.range.count
        guard count < fieldNamesByLength.count else { return false }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[name.range])
        for candidate in fieldNamesByLength[count] where raw.elementsEqual(candidate) { return true }
        return false
    }

    /// Appends the ids the value at `value` names to `ids`: a string, the strings of an array, or an object's
    /// string `id`. Anything else names nothing (the upstream refuses what it cannot read).
    static func collect(value: Range<Int>, in bytes: UnsafeRawBufferPointer, into ids: inout [String]) {
        var scanner = JSONScanner(bytes, range: value)
        scanner.skipWhitespace()
        guard scanner.index < value.upperBound else { return }
        switch bytes[scanner.index] {
        case UInt8(ascii: "\""):
            if let id = JSONText.decodeString(value: value, in: bytes), !id.isEmpty { ids.append(id) }
        case UInt8(ascii: "["):
            scanner.index += 1
            while true {
                scanner.skipWhitespace()
                let start = scanner.index
                guard (try? scanner.skipValue(depth: 2)) != nil else { return }
                if let id = JSONText.decodeString(value: start..<scanner.index, in: bytes), !id.isEmpty {
                    ids.append(id)
                }
                scanner.skipWhitespace()
                guard scanner.consume(UInt8(ascii: ",")) else { return }
            }
        case UInt8(ascii: "{"):
            try? scanner.forEachMember(depth: 2) { name, member in
                if JSONText.matches(name, "id", in: bytes),
                    let id = JSONText.decodeString(value: member, in: bytes), !id.isEmpty
                {
                    ids.append(id)
                }
                return true
            }
        default:
            return
        }
    }

    /// Appends the ids the value of a nested member, starting at `start`, names: a string, or the leading
    /// strings of an array. Only strings are read, never skipped over, so that members nested in one another
    /// cost one more read of their strings, not of everything below them.
    static func collectNested(at start: Int, in bytes: UnsafeRawBufferPointer, into ids: inout [String]) {
        var scanner = JSONScanner(bytes, range: start..<bytes.count)
        func string() -> Bool {
            guard scanner.index < bytes.count, bytes[scanner.index] == UInt8(ascii: "\""),
                let read = try? scanner.readString()
            else { return false }
            let raw = UnsafeRawBufferPointer(rebasing: bytes[read.range])
            if let id = read.escaped ? JSONText.decode(raw) : String(validating: raw, as: UTF8.self), !id.isEmpty {
                ids.append(id)
            }
            return true
        }
        guard !string(), scanner.consume(UInt8(ascii: "[")) else { return }
        while true {
            scanner.skipWhitespace()
            guard string() else { return }
            scanner.skipWhitespace()
            guard scanner.consume(UInt8(ascii: ",")) else { return }
        }
    }

    /// Whether a multipart part's name is one of `fieldNames`, alone or with `[]` (repeated parts of a list).
    static func isPart(_ name: ArraySlice<UInt8>) -> Bool {
        var name = name
        if name.count > 2, name.suffix(2).elementsEqual("[]".utf8) { name = name.dropLast(2) }
        return fieldNames.contains { name.elementsEqual($0.utf8) }
    }
}
