import Glibc
import NIOCore
import Shared

/// Where a worker's usage rows stand between `record` and the collector's acknowledgement, and the rules
/// that move them: held under the sender's lock, changed by the event loops (new rows) and by the sender's
/// thread (connecting, acknowledgements, replaying the spool).
///
/// Rows are written to the collector's socket at once when nothing is owed before them (direct mode), and
/// kept in memory until acknowledged. When the socket cannot take them without blocking, or there is no
/// connection, or older rows still wait in the spool, they are appended to the spool instead. Either way
/// they are in the kernel's hands before the answers they belong to are flushed, so a worker killed right
/// after loses no row. After a reconnect, rows in memory that were never acknowledged go to the spool, and
/// the spool is sent again from its start: the collector ignores a row it already has.
///
/// No system call is made here. One party at a time holds the claim to the socket and the spool; it asks
/// this state what to do (`route`, `spoolPlan`, `pumpStep`), does it outside the lock, and reports back.
/// Lines that arrive while another party holds the claim wait in the outbox, and the holder writes them
/// before it lets go: an event loop never waits for another's system call.
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

    /// What became of rows handed over: counted for the sender to act on.
    struct Report {
        /// The sender's thread must start sending the spool.
        var wake = false
        /// Rows dropped (the spool is at its cap or cannot be written).
        var dropped = 0
        /// Rows dropped since the worker started.
        var droppedTotal = 0
        /// Why the last ones were dropped.
        var reason = ""

        /// Both reports in one.
        mutating func merge(_ other: Report) {
            wake = wake || other.wake
            dropped += other.dropped
            if other.dropped > 0 {
                droppedTotal = other.droppedTotal
                reason = other.reason
            }
        }
    }

    /// Where the claim holder writes the lines it has.
    enum Route: Equatable {
        /// Send them on this socket.
        case socket(Int32)
        /// Append them to the spool.
        case spool
    }

    /// How the claim holder appends to the spool: into `segment` (nil: create one from `spool` first), as many
    /// bytes as `room` allows.
    struct SpoolPlan {
        var segment: UsageSpool.Segment?
        var spool: UsageSpool
        var room: Int
    }

    /// The sender thread's next step in sending the spool.
    enum PumpStep {
        /// Nothing to do now; `full` when the socket could take no more.
        case idle(full: Bool)
        /// Finish this partly written line on the socket.
        case owed(socket: Int32, bytes: [UInt8])
        /// Send the segment at `index` from byte `from`.
        case segment(socket: Int32, index: Int, file: UsageSpool.Segment, from: Int)
    }

    /// Bytes the spool may hold.
    let spoolCapacity: Int
    /// The spool directory of this worker.
    private(set) var spool: UsageSpool
    /// The connection to the collector, or -1.
    private(set) var socket: Int32 = -1
    /// Rows go straight to the socket.
    private(set) var direct = false
    /// A write on the socket failed: the sender's thread closes it and reconnects.
    private(set) var broken = false
    /// Some party writes to the socket or the spool right now (outside the lock).
    private(set) var claimed = false
    /// The rest of a partly written line: owed to the socket before anything else.
    private var owed: [UInt8] = []
    private var sentLines: UInt64 = 0
    private var acknowledgedLines: UInt64 = 0
    /// Batches on the socket, not yet acknowledged, with the connection's number of each one's last line.
    private var inFlight = CircularBuffer<(line: UInt64, lines: UsageLines)>(initialCapacity: 256)
    /// Lines handed over while the claim was held, and the channels to flush once they are written.
    private var outbox = UsageLines()
    private var outboxChannels: [any Channel] = []
    /// The spool's segments held by this worker (its own and adopted ones), oldest first.
    private(set) var segments: [SpooledSegment] = []
    /// Bytes in those segments.
    private(set) var spooledBytes = 0
    /// Rows dropped since the worker started.
    private(set) var dropped = 0
    /// `send` calls made with new rows (not spool replays): one per tick's batch.
    private(set) var directSends = 0
    /// Appends of new rows to the spool: one per tick's batch.
    private(set) var spoolAppends = 0

    /// Delivery spooling to `spool`, up to `spoolCapacity` bytes.
    init(spool: UsageSpool, spoolCapacity: Int) {
        self.spool = spool
        self.spoolCapacity = spoolCapacity
    }

    /// True when every row taken has been acknowledged (or dropped).
    var isSettled: Bool { inFlight.isEmpty && segments.isEmpty && outbox.isEmpty && !claimed }

    /// Rows written to the socket and not yet acknowledged.
    var inFlightCount: Int { inFlight.reduce(0) { $0 + $1.lines.count } }

    // MARK: - The claim

    /// Takes the claim when it is free (true); else leaves `lines` in the outbox for the holder, who writes
    /// them and then flushes `channels`.
    mutating func claim(orQueue lines: UsageLines, flushing channels: [any Channel]) -> Bool {
        guard claimed else {
            claimed = true
            return true
        }
        outbox.append(lines)
        outboxChannels += channels
        return false
    }

    /// Takes the claim when it is free (the sender's thread, which can wait).
    mutating func claim() -> Bool {
        guard !claimed else { return false }
        claimed = true
        return true
    }

    /// The holder is done with what it had: the outbox's lines and channels to write next (the claim is
    /// kept), or nil when it is empty (the claim is let go).
    mutating func nextOrRelease() -> (lines: UsageLines, channels: [any Channel])? {
        guard outbox.isEmpty else {
            defer {
                outbox = UsageLines()
                outboxChannels = []
            }
            return (outbox, outboxChannels)
        }
        claimed = false
        return nil
    }

    // MARK: - Rows (the claim holder)

    /// Where new lines go: the socket when it takes rows directly and the in-flight limit allows, else the spool.
    func route() -> Route {
        direct && sentLines - acknowledgedLines < Self.maximumInFlight ? .socket(socket) : .spool
    }

    /// `written` bytes of `lines` went to the socket (negative: `send` failed with `error`). Returns the byte
    /// from which the lines must go to the spool instead, or nil when all of them are on the socket.
    mutating func sent(_ lines: UsageLines, written: Int, error: Int32) -> Int? {
        directSends += 1
        if written == lines.bytes.count {
            sentLines += UInt64(lines.count)
            inFlight.append((sentLines, lines))
            return nil
        }
        direct = false
        guard written > 0 else {
            if error != EAGAIN && error != EWOULDBLOCK { broken = true }
            return 0
        }
        let whole = lines.wholeLines(from: 0, before: written)
        if whole.lines > 0 {
            sentLines += UInt64(whole.lines)
            var done = UsageLines()
            done.bytes = Array(lines.bytes[..<whole.end])
            done.count = whole.lines
            inFlight.append((sentLines, done))
        }
        if written > whole.end {
            // The line is begun on the socket and must be finished there; the row itself is kept in the spool.
            let lineEnd = lines.bytes[written...].firstIndex(of: UInt8(ascii: "\n"))!
            owed = Array(lines.bytes[written...lineEnd])
            sentLines += 1
        }
        return whole.end
    }

    /// How to append `bytes` more to the spool: the segment taking rows, and the room left under the cap.
    func spoolPlan() -> SpoolPlan {
        let last = segments.last.flatMap { $0.accepting ? $0.file : nil }
        return SpoolPlan(segment: last, spool: spool, room: spoolCapacity - spooledBytes)
    }

    /// The claim holder appended `lines` to `file` (a new segment when `created`, made with `spool`), or
    /// dropped `droppedLines` rows for `reason`.
    mutating func spooled(
        into file: UsageSpool.Segment?, created: Bool, spool: UsageSpool, bytes: Int, droppedLines: Int,
        reason: String, wake: Bool
    ) -> Report {
        direct = false
        self.spool = spool
        if let file {
            if created {
                segments.append(SpooledSegment(file: file, accepting: true))
            } else if let last = segments.indices.last, segments[last].file.path == file.path {
                segments[last].file.size = file.size
            }
            spooledBytes += bytes
            if bytes > 0 { spoolAppends += 1 }
        }
        var report = Report(wake: wake)
        if droppedLines > 0 {
            dropped += droppedLines
            report.dropped = droppedLines
            report.droppedTotal = dropped
            report.reason = reason
        }
        return report
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

    /// Forgets the connection (the caller closes `socket`, with the claim held); returns the batches it
    /// carried that were not acknowledged, for the spool. The whole spool is to be sent again on the next one.
    mutating func disconnect() -> (socket: Int32, unacknowledged: [UsageLines]) {
        let closing = socket
        socket = -1
        direct = false
        broken = false
        owed = []
        let unacknowledged = inFlight.map(\.lines)
        inFlight.removeAll()
        for index in segments.indices {
            segments[index].sent = 0
            segments[index].lastLine = nil
        }
        return (closing, unacknowledged)
    }

    /// Whether the sender's thread has anything to send: on a live connection, rows do not go direct yet
    /// (something is owed, or the spool is being sent).
    var needsPump: Bool { socket >= 0 && !broken && !direct }

    /// What to send next from the spool (or what is owed), as far as the in-flight limit allows; once the spool
    /// is all sent, rows go straight to the socket again.
    mutating func pumpStep() -> PumpStep {
        guard socket >= 0, !broken else { return .idle(full: false) }
        if !owed.isEmpty { return .owed(socket: socket, bytes: owed) }
        guard sentLines - acknowledgedLines < Self.maximumInFlight else { return .idle(full: false) }
        guard let index = segments.firstIndex(where: { $0.sent < $0.file.size }) else {
            // All of the spool is on its way: the last segment takes no more rows, new rows go direct.
            if let last = segments.indices.last, segments[last].accepting {
                segments[last].accepting = false
                segments[last].lastLine = sentLines
            }
            direct = true
            return .idle(full: false)
        }
        return .segment(socket: socket, index: index, file: segments[index].file, from: segments[index].sent)
    }

    /// `written` bytes of what is owed went out (negative: failed with `error`); false when the socket is full
    /// or broken.
    mutating func owedSent(written: Int, error: Int32) -> Bool {
        guard written >= 0 else {
            if error != EAGAIN && error != EWOULDBLOCK { broken = true }
            return false
        }
        owed.removeFirst(written)
        return owed.isEmpty
    }

    /// `written` bytes of `chunk`, read from segment `index`, went out (negative: failed with `error`); false
    /// when the socket is full or broken. An empty chunk skips bytes that end in no line.
    mutating func segmentSent(index: Int, chunk: [UInt8], written: Int, error: Int32) -> Bool {
        if chunk.isEmpty {
            // Bytes that end in no line: a write torn when a worker was killed; they hold no row.
            segments[index].sent = segments[index].file.size
        } else {
            guard written >= 0 else {
                if error != EAGAIN && error != EWOULDBLOCK { broken = true }
                return false
            }
            if written < chunk.count { owed = Array(chunk[written...]) }
            sentLines += UInt64(chunk.count(where: { $0 == UInt8(ascii: "\n") }))
            segments[index].sent += chunk.count
        }
        if segments[index].sent == segments[index].file.size, !segments[index].accepting {
            segments[index].lastLine = sentLines
        }
        return owed.isEmpty
    }

    /// The collector committed the first `lines` lines of this connection: forget those rows; returns the
    /// segments all of whose lines are among them, for the caller to delete.
    mutating func acknowledge(_ lines: UInt64) -> [UsageSpool.Segment] {
        guard lines > acknowledgedLines, lines <= sentLines else { return [] }
        acknowledgedLines = lines
        while let first = inFlight.first, first.line <= lines { inFlight.removeFirst() }
        var done: [UsageSpool.Segment] = []
        segments.removeAll { segment in
            guard let last = segment.lastLine, last <= lines else { return false }
            done.append(segment.file)
            spooledBytes -= segment.file.size
            return true
        }
        return done
    }

    /// Takes over segments of workers that are gone, to send them first.
    mutating func adopt(_ orphans: [UsageSpool.Segment]) {
        guard !orphans.isEmpty else { return }
        segments.insert(contentsOf: orphans.map { SpooledSegment(file: $0, accepting: false) }, at: 0)
        spooledBytes += orphans.reduce(0) { $0 + $1.size }
        direct = false
    }

    /// At exit, after `disconnect`: every segment is let go for another worker (the caller closes them).
    mutating func releaseSegments() -> [UsageSpool.Segment] {
        let files = segments.map(\.file)
        segments.removeAll()
        spooledBytes = 0
        return files
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
        for batch in inFlight { lines += batch.lines.bytes.split(separator: UInt8(ascii: "\n")).map(Array.init) }
        lines += outbox.bytes.split(separator: UInt8(ascii: "\n")).map(Array.init)
        return lines.compactMap(UsageWire.decode)
    }
}
