/// Where events end in an event stream (`text/event-stream`): an event ends at an empty line.
enum EventStreamFraming {
    /// Whether the newline at `index` ends an event: it closes an empty line (`\n\n` or `\n\r\n`).
    static func endsEvent(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Bool {
        guard index > 0, bytes[index] == UInt8(ascii: "\n") else { return false }
        let previous = bytes[index - 1]
        if previous == UInt8(ascii: "\n") { return true }
        return previous == UInt8(ascii: "\r") && index >= 2 && bytes[index - 2] == UInt8(ascii: "\n")
    }

    /// The length of the part of `bytes` made of whole events (up to and including the last empty line).
    static func completeLength(_ bytes: UnsafeRawBufferPointer) -> Int {
        var index = bytes.count - 1
        while index > 0 {
            if endsEvent(bytes, at: index) { return index + 1 }
            index -= 1
        }
        return 0
    }
}
