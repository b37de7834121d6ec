/// Reads multipart/form-data bodies (RFC 7578) far enough to find the value of a named part: the `model`
/// of audio transcriptions, image edits and the like. Iterative, and it copies nothing but that value.
public enum MultipartForm {
    /// The boundary named by a `multipart/form-data; boundary=…` content type (quoted or not); nil when
    /// there is none, it is repeated, or it is not a valid boundary (1 to 70 characters).
    public static func boundary(contentType: String) -> [UInt8]? {
        var found: [UInt8]?
        for parameter in contentType.utf8.split(separator: UInt8(ascii: ";")).dropFirst() {
            let parameter = trimmed(parameter)
            guard let equals = parameter.firstIndex(of: UInt8(ascii: "=")) else { continue }
            guard ASCII.equalIgnoringCase(trimmed(parameter[..<equals]), "boundary".utf8) else { continue }
            guard found == nil else { return nil }
            var value = trimmed(parameter[parameter.index(after: equals)...])
            if value.first == UInt8(ascii: "\"") {
                guard value.count >= 2, value.last == UInt8(ascii: "\"") else { return nil }
                value = value.dropFirst().dropLast()
            }
            guard (1...70).contains(value.count), value.last != UInt8(ascii: " "),
                value.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") })
            else { return nil }
            found = Array(value)
        }
        return found
    }

    /// A boundary after a CR LF, the delimiter between parts.
    private static let crlf: [UInt8] = [0x0D, 0x0A]

    /// The `model` part's value; `.absent` when no part is named `model`.
    public static func model(in body: UnsafeRawBufferPointer, boundary: [UInt8]) -> RequestModel {
        fields(in: body, boundary: boundary).model
    }

    /// The `model` part's value and the object ids of the parts `ObjectReferences` names, in one pass.
    public static func fields(in body: UnsafeRawBufferPointer, boundary: [UInt8]) -> RequestFields {
        var model: RequestModel = .absent
        var objectIDs: [String] = []
        let outcome = forEachPart(in: body, boundary: boundary) { name, content in
            if ObjectReferences.isPart(name) {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: body[content]), as: UTF8.self)
                if !text.isEmpty { objectIDs.append(text) }
                return true
            }
            guard name.elementsEqual("model".utf8) else { return true }
            if model != .absent {
                model = .unreadable(.duplicateModel)
                return false
            }
            guard let text = String(validating: UnsafeRawBufferPointer(rebasing: body[content]), as: UTF8.self) else {
                model = .unreadable(.malformedMultipart)
                return false
            }
            model = .named(text)
            return true
        }
        if case .unreadable = model { return RequestFields(model: model, objectIDs: objectIDs) }
        return RequestFields(model: outcome ? model : .unreadable(.malformedMultipart), objectIDs: objectIDs)
    }

    /// Calls `body` with the `name` of each part (from its Content-Disposition) and the range of its
    /// content; `body` returns false to stop. False when the body is not a well-formed multipart body
    /// with this boundary (a missing closing delimiter included).
    public static func forEachPart(
        in bytes: UnsafeRawBufferPointer, boundary: [UInt8], _ body: (_ name: ArraySlice<UInt8>, Range<Int>) -> Bool
    ) -> Bool {
        let dash = UInt8(ascii: "-")
        let delimiter = [dash, dash] + boundary
        let separator = crlf + delimiter
        // A preamble may come before the first delimiter.
        var index: Int
        if bytes.starts(with: delimiter) {
            index = delimiter.count
        } else if let first = find(separator, in: bytes, from: 0) {
            index = first + separator.count
        } else {
            return false
        }
        while true {
            // After a delimiter: `--` closes the body; otherwise padding, then CR LF and the part.
            if index + 2 <= bytes.count, bytes[index] == dash, bytes[index + 1] == dash { return true }
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") {
                index += 1
            }
            guard index + 2 <= bytes.count, bytes[index] == 0x0D, bytes[index + 1] == 0x0A else { return false }
            index += 2
            let headersEnd: Int
            if index + 2 <= bytes.count, bytes[index] == 0x0D, bytes[index + 1] == 0x0A {
                headersEnd = index
            } else {
                guard let end = find(crlf + crlf, in: bytes, from: index) else { return false }
                headersEnd = end + 2
            }
            guard let name = partName(UnsafeRawBufferPointer(rebasing: bytes[index..<headersEnd])) else {
                return false
            }
            let contentStart = headersEnd + 2
            guard let contentEnd = find(separator, in: bytes, from: contentStart) else { return false }
            guard body(name, contentStart..<contentEnd) else { return true }
            index = contentEnd + separator.count
        }
    }

    /// The `name` parameter of a part's Content-Disposition header (each header line ends with CR LF);
    /// nil when it has none or it is written in a way readers may take differently (`name*`, repeated).
    static func partName(_ headers: UnsafeRawBufferPointer) -> ArraySlice<UInt8>? {
        var name: ArraySlice<UInt8>?
        var lineStart = 0
        while lineStart < headers.count {
            guard let lineEnd = find(crlf, in: headers, from: lineStart) else { return nil }
            let line = Array(headers[lineStart..<lineEnd])[...]
            lineStart = lineEnd + 2
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return nil }
            guard ASCII.equalIgnoringCase(trimmed(line[..<colon]), "content-disposition".utf8) else { continue }
            guard name == nil, let value = dispositionName(line[line.index(after: colon)...]) else { return nil }
            name = value
        }
        return name
    }

    /// The `name` of `form-data; name="…"; filename="…"`.
    private static func dispositionName(_ value: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var index = value.startIndex
        var name: ArraySlice<UInt8>?
        var first = true
        while index < value.endIndex {
            // One parameter: a token, then `=` and a token or quoted string, up to `;`.
            var end = index
            var inQuotes = false
            var text: [UInt8] = []
            var key: [UInt8]?
            while end < value.endIndex {
                let byte = value[end]
                if inQuotes {
                    if byte == UInt8(ascii: "\\"), end + 1 < value.endIndex {
                        end += 1
                        text.append(value[end])
                    } else if byte == UInt8(ascii: "\"") {
                        inQuotes = false
                    } else {
                        text.append(byte)
                    }
                } else if byte == UInt8(ascii: "\"") {
                    inQuotes = true
                } else if byte == UInt8(ascii: ";") {
                    break
                } else if byte == UInt8(ascii: "="), key == nil {
                    key = Array(trimmed(text[...]))
                    text = []
                } else {
                    text.append(byte)
                }
                end += 1
            }
            guard !inQuotes else { return nil }
            if first {
                guard key == nil, ASCII.equalIgnoringCase(trimmed(text[...]), "form-data".utf8) else { return nil }
                first = false
            } else if let key {
                if ASCII.equalIgnoringCase(key, "name".utf8) {
                    guard name == nil else { return nil }
                    name = trimmedOutsideQuotes(text)
                } else if ASCII.equalIgnoringCase(key, "name*".utf8) {
                    return nil
                }
            }
            index = end + 1
        }
        return name
    }

    private static func trimmedOutsideQuotes(_ text: [UInt8]) -> ArraySlice<UInt8> {
        // Quotes were already taken off; whitespace around an unquoted token is not part of it.
        trimmed(text[...])
    }

    private static func trimmed<C: BidirectionalCollection<UInt8>>(_ bytes: C) -> C.SubSequence {
        let isSpace: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }) else { return bytes[bytes.endIndex...] }
        let last = bytes.lastIndex(where: { !isSpace($0) })!
        return bytes[first...last]
    }

    /// The offset of the first occurrence of `needle` in `bytes` at or after `start`.
    static func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let head = needle.first, bytes.count >= needle.count else { return nil }
        var index = start
        let last = bytes.count - needle.count
        while index <= last {
            if bytes[index] == head {
                var matched = 1
                while matched < needle.count, bytes[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return index }
            }
            index += 1
        }
        return nil
    }
}
