import Glibc
import NIOCore
import Shared

/// Where a worker's usage rows stand between `record` and the collector's acknowledgement, and the rules
/// that move them: held under the sender's lock, changed by the event loops (new rows) and by the sender's
/// thread (connecting, acknowledgements, replaying the spool).
///
/// A row is written to the collector's socket at once when nothing is owed before it (direct mode), and
/// kept in memory until acknowledged. When the socket cannot take it without blocking, or there is no
/// connection, or older rows still wait in the spool, it is appended to the spool instead. Either way it
/// is in the kernel's hands before `take` returns, so a worker killed right after loses no row. After a
/// reconnect, rows in memory that were never acknowledged go to the spool, and the spool is sent again
/// from its start: the collector ignores a row it already has.
struct UsageDelivery {
    /// Most lines sent on a connection and not yet acknowledged; further rows wait in the spool. Bounds the
    /// memory held here and in the collector.
    static let maximumInFlight: UInt64 = 20_000

    /// One spool segment and how far it was sent on the current connection.
    struct SpooledSegment {
        var file: UsageSpool.Segment
        /// New rows are appended here (only ever the last segment).
        var accepting: Bool
        /// Bytes sent on the current connection.
        var sent = 0
        /// The connection's number of its last line, once all of it was sent and it takes no more rows.
        var lastLine: UInt64?
    }

    /// What became of a row given to `take`.
    enum Outcome {
        /// Written to the collector's socket.
        case sent
        /// Appended to the spool; `wake` when the sender's thread must start sending the spool.
        case spooled(wake: Bool)
        /// Dropped (the spool is at its cap or cannot be written); `total` dropped so far.
        case dropped(total: Int, reason: String)
    }

    /// Bytes the spool may hold.
    let spoolCapacity: Int
    /// The spool directory of this worker.
    var spool: UsageSpool
    /// The connection to the collector, or -1.
    private(set) var socket: Int32 = -1
    /// Rows go straight to the socket.
    private(set) var direct = false
    /// A write on the socket failed: the sender's thread closes it and reconnects.
    private(set) var broken = false
    /// The rest of a partly written line: owed to the socket before anything else.
    private var owed: [UInt8] = []
    private var sentLines: UInt64 = 0
    private var acknowledgedLines: UInt64 = 0
    private var inFlight = CircularBuffer<(line: UInt64, bytes: [UInt8])>(initialCapacity: 1024)
    /// The spool's segments held by this worker (its own and adopted ones), oldest first.
    private(set) var segments: [SpooledSegment] = []
    /// Bytes in those segments.
    private(set) var spooledBytes = 0
    /// Rows dropped since the worker started.
    private(set) var dropped = 0

    /// Delivery spooling to `spool`, up to `spoolCapacity` bytes.
    init(spool: UsageSpool, spoolCapacity: Int) {
        self.spool = spool
        self.spoolCapacity = spoolCapacity
    }

    /// True when every row taken has been acknowledged (or dropped).
    var isSettled: Bool { inFlight.isEmpty && segments.isEmpty }

    /// Rows written to the socket and not yet acknowledged.
    var inFlightCount: Int { inFlight.count }

    // MARK: - Rows

    /// Hands one encoded row to the collector or the spool; never blocks.
    mutating func take(_ line: [UInt8]) -> Outcome {
        guard direct, sentLines - acknowledgedLines < Self.maximumInFlight else { return spoolRow(line) }
        let written = line.withUnsafeBytes {
            send(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        }
        if written == line.count {
            sentLines += 1
            inFlight.append((sentLines, line))
            return .sent
        }
        if written > 0 {
            // The line is begun on the socket and must be finished there; the row itself is kept in the spool.
            owed = Array(line[written...])
            sentLines += 1
        } else if errno != EAGAIN && errno != EWOULDBLOCK {
            broken = true
        }
        direct = false
        return spoolRow(line, wake: true)
    }

    private mutating func spoolRow(_ line: [UInt8], wake: Bool = false) -> Outcome {
        direct = false
        guard spooledBytes + line.count <= spoolCapacity else {
            dropped += 1
            return .dropped(total: dropped, reason: "spool full")
        }
        do {
            if segments.last?.accepting != true {
                segments.append(SpooledSegment(file: try spool.create(), accepting: true))
            }
            try UsageSpool.append(line, to: &segments[segments.count - 1].file)
        } catch {
            dropped += 1
            return .dropped(total: dropped, reason: error.description)
        }
        spooledBytes += line.count
        return .spooled(wake: wake)
    }

    // MARK: - Connection (the sender's thread only)

    /// A new connection: everything spooled is to be sent on it first.
    mutating func connected(_ socket: Int32) {
        self.socket = socket
        broken = false
        direct = false
        sentLines = 0
        acknowledgedLines = 0
    }

    /// Closes the connection; rows it carried that were not acknowledged go to the spool, and the whole
    /// spool is to be sent again on the next one.
    mutating func disconnect() -> [Outcome] {
        if socket >= 0 { close(socket) }
        socket = -1
        direct = false
        broken = false
        owed = []
        let unacknowledged = inFlight
        inFlight.removeAll()
        for index in segments.indices {
            segments[index].sent = 0
            segments[index].lastLine = nil
        }
        return unacknowledged.map { spoolRow($0.bytes) }
    }

    /// Sends what is owed, then spooled rows, as far as the socket takes them without blocking and the
    /// in-flight limit allows; once the spool is all sent, rows go straight to the socket again. Returns
    /// true when it stopped because the socket was full.
    mutating func pump() -> Bool {
        guard socket >= 0, !broken else { return false }
        while true {
            if !owed.isEmpty {
                let written = owed.withUnsafeBytes {
                    send(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                }
                if written < 0 {
                    if errno != EAGAIN && errno != EWOULDBLOCK { broken = true }
                    return !broken
                }
                owed.removeFirst(written)
                if !owed.isEmpty { return true }
            }
            guard sentLines - acknowledgedLines < Self.maximumInFlight else { return false }
            guard let index = segments.firstIndex(where: { $0.sent < $0.file.size }) else {
                // All of the spool is on its way: the last segment takes no more rows, new rows go direct.
                if let last = segments.indices.last, segments[last].accepting {
                    segments[last].accepting = false
                    segments[last].lastLine = sentLines
                }
                direct = true
                return false
            }
            let chunk = UsageSpool.lines(of: segments[index].file, from: segments[index].sent)
            if chunk.isEmpty {
                // Bytes that end in no line: a write torn when a worker was killed; they hold no row.
                segments[index].sent = segments[index].file.size
            } else {
                let written = chunk.withUnsafeBytes {
                    send(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                }
                if written < 0 {
                    if errno != EAGAIN && errno != EWOULDBLOCK { broken = true }
                    return !broken
                }
                if written < chunk.count { owed = Array(chunk[written...]) }
                sentLines += UInt64(chunk.count(where: { $0 == UInt8(ascii: "\n") }))
                segments[index].sent += chunk.count
            }
            if segments[index].sent == segments[index].file.size, !segments[index].accepting {
                segments[index].lastLine = sentLines
            }
        }
    }

    /// The collector committed the first `lines` lines of this connection: forget those rows, and delete the
    /// segments all of whose lines are among them.
    mutating func acknowledge(_ lines: UInt64) {
        guard lines > acknowledgedLines, lines <= sentLines else { return }
        acknowledgedLines = lines
        while let first = inFlight.first, first.line <= lines { inFlight.removeFirst() }
        segments.removeAll { segment in
            guard let last = segment.lastLine, last <= lines else { return false }
            UsageSpool.remove(segment.file)
            spooledBytes -= segment.file.size
            return true
        }
    }

    /// Takes over segments of workers that are gone, to send them first.
    mutating func adopt(_ orphans: [UsageSpool.Segment]) {
        guard !orphans.isEmpty else { return }
        segments.insert(contentsOf: orphans.map { SpooledSegment(file: $0, accepting: false) }, at: 0)
        spooledBytes += orphans.reduce(0) { $0 + $1.size }
        direct = false
    }

    /// At exit: rows not acknowledged go to the spool, and every segment is let go for another worker.
    mutating func release() -> [Outcome] {
        let outcomes = disconnect()
        for segment in segments { UsageSpool.release(segment.file) }
        segments.removeAll()
        spooledBytes = 0
        return outcomes
    }

    /// Every row taken and not yet acknowledged, oldest spooled first (tests and tools).
    var unacknowledged: [UsageRow] {
        var lines: [[UInt8]] = []
        for segment in segments {
            var offset = 0
            while offset < segment.file.size {
                let chunk = UsageSpool.lines(of: segment.file, from: offset)
                guard !chunk.isEmpty else { break }
                offset += chunk.count
                lines += chunk.split(separator: UInt8(ascii: "\n")).map(Array.init)
            }
        }
        lines += inFlight.map { Array($0.bytes.dropLast()) }
        return lines.compactMap(UsageWire.decode)
    }
}
