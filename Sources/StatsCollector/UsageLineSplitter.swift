import Glibc

/// Cuts the bytes read from a worker's connection into lines, handing each one over in place: no buffer per
/// line (NIO's `LineBasedFrameDecoder` made a `ByteBuffer` of every row, about 9 % of the collector's time).
/// Only a line split across two reads is copied, and kept up to `maximumLineBytes`.
struct UsageLineSplitter {
    /// The longest line kept across reads; a longer one ends the connection.
    let maximumLineBytes: Int
    private var partial: [UInt8] = []

    /// A splitter keeping at most `maximumLineBytes` of an unfinished line.
    init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    /// Bytes of a line begun and not finished yet.
    var pendingBytes: Int { partial.count }

    /// Calls `line` with each line `bytes` completes (without its newline), in order; false when an unfinished
    /// line grew past `maximumLineBytes`.
    mutating func split(_ bytes: UnsafeRawBufferPointer, _ line: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return true }
        var start = 0
        func nextNewline(from offset: Int) -> Int? {
            guard offset < bytes.count, let found = memchr(base + offset, 0x0A, bytes.count - offset) else {
                return nil
            }
            return base.distance(to: UnsafeRawPointer(found))
        }
        if !partial.isEmpty {
            guard let end = nextNewline(from: 0) else {
                partial += bytes
                return partial.count <= maximumLineBytes
            }
            partial += UnsafeRawBufferPointer(rebasing: bytes[..<end])
            guard partial.count <= maximumLineBytes else { return false }
            partial.withUnsafeBytes(line)
            partial.removeAll(keepingCapacity: true)
            start = end + 1
        }
        while let end = nextNewline(from: start) {
            line(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
            start = end + 1
        }
        if start < bytes.count { partial += UnsafeRawBufferPointer(rebasing: bytes[start...]) }
        return partial.count <= maximumLineBytes
    }
}
