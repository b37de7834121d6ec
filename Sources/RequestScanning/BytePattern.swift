/// A short byte string looked for in text by Horspool's method: the text is read in steps of up to the
/// pattern's length, about one byte in six for `"usage"`, instead of byte by byte.
struct BytePattern: Sendable {
    private let pattern: [UInt8]
    /// For each byte value, how far the pattern may move when that byte is under its last position.
    private let shift: [UInt8]

    /// The pattern of `text`'s UTF-8 bytes (at most 255 of them).
    init(_ text: String) {
        pattern = Array(text.utf8)
        precondition(!pattern.isEmpty && pattern.count < 256, "a pattern is 1 to 255 bytes")
        var shift = [UInt8](repeating: UInt8(pattern.count), count: 256)
        for index in 0..<pattern.count - 1 { shift[Int(pattern[index])] = UInt8(pattern.count - 1 - index) }
        self.shift = shift
    }

    /// The offset of the first occurrence that lies wholly in `text[start..<end]`; nil when there is none.
    func firstOffset(in text: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil) -> Int? {
        let end = end ?? text.count
        let last = pattern.count - 1
        return pattern.withUnsafeBufferPointer { pattern in
            shift.withUnsafeBufferPointer { shift -> Int? in
                var position = start
                while position + last < end {
                    let byte = text[position + last]
                    if byte == pattern[last] {
                        var index = 0
                        while index < last, text[position + index] == pattern[index] { index += 1 }
                        if index == last { return position }
                    }
                    position += Int(shift[Int(byte)])
                }
                return nil
            }
        }
    }
}
