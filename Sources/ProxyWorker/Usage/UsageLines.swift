/// Encoded usage lines in one buffer, each ending in `\n`: the rows of one event-loop tick, or one row.
struct UsageLines {
    /// The lines, back to back.
    var bytes: [UInt8] = []
    /// How many lines `bytes` holds.
    var count = 0

    /// One line, as `UsageWire` encodes it.
    init(line: [UInt8]) {
        bytes = line
        count = 1
    }

    /// No lines yet, with room for `capacity` bytes.
    init(capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    /// Whether there is no line.
    var isEmpty: Bool { count == 0 }

    /// Appends the lines of `other`.
    mutating func append(_ other: UsageLines) {
        bytes += other.bytes
        count += other.count
    }

    /// Where the whole lines that begin at or after `start` and end before `limit` end, and how many they are:
    /// the cut that keeps only whole lines.
    func wholeLines(from start: Int, before limit: Int) -> (end: Int, lines: Int) {
        var end = start
        var lines = 0
        var index = start
        let stop = min(limit, bytes.count)
        while index < stop {
            if bytes[index] == UInt8(ascii: "\n") {
                end = index + 1
                lines += 1
            }
            index += 1
        }
        return (end, lines)
    }

    /// The lines from byte `start` (a line's beginning) on.
    func suffix(from start: Int) -> UsageLines {
        guard start > 0 else { return self }
        var rest = UsageLines()
        rest.bytes = Array(bytes[start...])
        rest.count = count - wholeLines(from: 0, before: start).lines
        return rest
    }
}
