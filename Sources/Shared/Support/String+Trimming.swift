extension StringProtocol {
    /// The string without leading and trailing spaces, tabs and newlines.
    @inlinable
    package func trimmingWhitespace() -> String {
        // Byte by byte: the characters trimmed are ASCII, so the bounds found fall between characters.
        let bytes = utf8
        var start = bytes.startIndex
        while start != bytes.endIndex, bytes[start].isASCIIWhitespace { bytes.formIndex(after: &start) }
        // Forward to the end (the view is not bidirectional here), remembering where the last non-space ended.
        var end = start
        var index = start
        while index != bytes.endIndex {
            let next = bytes.index(after: index)
            if !bytes[index].isASCIIWhitespace { end = next }
            index = next
        }
        return String(self[start..<end])
    }
}

extension UInt8 {
    /// A space, tab, carriage return or newline.
    @inlinable
    package var isASCIIWhitespace: Bool {
        self == UInt8(ascii: " ") || self == UInt8(ascii: "\t") || self == UInt8(ascii: "\n")
            || self == UInt8(ascii: "\r")
    }
}
