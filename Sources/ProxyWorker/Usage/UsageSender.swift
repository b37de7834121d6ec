import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared
import Synchronization

/// Sends usage rows to the stats collector over its Unix socket, and keeps each row until the collector
/// acknowledges that it is committed: in memory while it is on its way, in the spool (on disk) while the
/// collector cannot take it.
///
/// `record(_:flushing:)` gathers the rows of one event-loop tick and writes them in one non-blocking `send`
/// (or, with the collector away, one `write` to the spool) once the tick's events are handled, then flushes
/// the channels whose answers they belong to: a row is in the kernel's hands before its answer's end leaves,
/// so it survives the worker being killed right after. The lock guarding the delivery state is never held
/// across a system call (`UsageDelivery`). A thread of its own reconnects, reads acknowledgements, replays
/// the spool and takes over the spool files of workers that died. At the spool's cap rows are dropped,
/// counted and logged.
final class UsageSender: Service, Sendable {
    private let socketPath: String
    private let worker: Int
    private let drops: UsageDropBoard?
    let logger: Logger
    let delivery: Mutex<UsageDelivery>
    let bell: (read: Int32, write: Int32)
    let finishing = Atomic<Bool>(false)
    let shutdownGrace: Duration
    private let ticks = ThreadSpecificVariable<UsageTickBatch>()

    /// A sender to the collector at `socketPath`, spooling to `spoolDirectory` (default: `spool` beside the
    /// socket) up to `spoolCapacity` bytes, counting drops for worker slot `worker` on `drops`.
    init(
        socketPath: String, spoolDirectory: String? = nil, spoolCapacity: Int = 256 << 20, worker: Int = 0,
        drops: UsageDropBoard? = nil, shutdownGrace: Duration = .seconds(2), logger: Logger
    ) {
        self.socketPath = socketPath
        self.worker = worker
        self.drops = drops
        self.shutdownGrace = shutdownGrace
        self.logger = logger
        let directory =
            spoolDirectory
            ?? (socketPath.split(separator: "/", omittingEmptySubsequences: false).dropLast()
                .joined(separator: "/") + "/spool")
        let owner = "w\(worker)-\(getpid())-\(String(UInt32.random(in: .min ... .max), radix: 16))"
        delivery = Mutex(
            UsageDelivery(spool: UsageSpool(directory: directory, owner: owner), spoolCapacity: spoolCapacity))
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0, "cannot create the usage sender's pipe")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        bell = (fds[0], fds[1])
    }

    deinit {
        close(bell.read)
        close(bell.write)
    }

    /// Hands a finished request's row to the collector, or to the spool, with the other rows of this
    /// event-loop tick; `channel` is flushed right after they are in the kernel's hands. Call it on
    /// `channel`'s event loop, and write the answer's end without flushing it.
    func record(_ row: UsageRow, flushing channel: any Channel) {
        channel.eventLoop.assertInEventLoop()
        let tick: UsageTickBatch
        if let current = ticks.currentValue {
            tick = current
        } else {
            tick = UsageTickBatch()
            ticks.currentValue = tick
        }
        guard tick.add(row, flushing: channel) else { return }
        // The first row of this tick: the batch leaves once the loop has handled the tick's other events.
        channel.eventLoop.execute { self.send(tick) }
    }

    /// Hands a finished request's row to the collector, or to the spool, at once; never blocks.
    func record(_ row: UsageRow) {
        deliver(UsageLines(line: UsageWire.encode(row)), flushing: [])
    }

    /// Hands an object's creation or deletion to the collector, or to the spool, like a row.
    func record(_ change: ObjectChange) {
        guard let line = UsageWire.encode(change) else { return }
        deliver(UsageLines(line: line), flushing: [])
    }

    /// Hands a per-minute count of refused requests to the collector, or to the spool, like a row.
    func record(_ count: RefusedCount) {
        deliver(UsageLines(line: UsageWire.encode(count)), flushing: [])
    }

    /// Rows recorded and not yet acknowledged by the collector.
    var pending: Int { queued.count }

    /// Those rows themselves, spooled ones first (tests and tools).
    var queued: [UsageRow] { delivery.withLock { $0.unacknowledged } }

    /// Rows dropped because the spool was full or could not be written.
    var dropped: Int { delivery.withLock { $0.dropped } }

    /// Bytes in the spool held by this worker.
    var spooledBytes: Int { delivery.withLock { $0.spooledBytes } }

    /// `send` calls that carried new rows (tests: one per tick's batch).
    var directSends: Int { delivery.withLock { $0.directSends } }

    /// Appends of rows to the spool (tests: one per tick's batch while the collector is away).
    var spoolAppends: Int { delivery.withLock { $0.spoolAppends } }

    /// Whether rows go straight to the collector's socket now (tests).
    var sendsDirectly: Bool { delivery.withLock { $0.direct } }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    let thread = Thread { [self] in
                        serve()
                        done.resume()
                    }
                    thread.name = "usage-sender"
                    thread.start()
                }
            } onCancel: {
                self.finish()
            }
        } onGracefulShutdown: {
            self.finish()
        }
    }

    private func finish() {
        finishing.store(true, ordering: .relaxed)
        ring()
    }

    // MARK: - Writing rows (whoever holds the claim)

    /// Sends a tick's batch and flushes its channels.
    private func send(_ tick: UsageTickBatch) {
        let (lines, channels) = tick.take()
        deliver(lines, flushing: channels)
    }

    /// Writes `lines` and flushes `channels` after them, or, when another party is writing, leaves them to it.
    private func deliver(_ lines: UsageLines, flushing channels: [any Channel]) {
        guard delivery.withLock({ $0.claim(orQueue: lines, flushing: channels) }) else { return }
        var report = write(lines)
        // Flushed once the claim is let go: a flush runs handlers, which may record rows again.
        let others = finishClaim(report: &report)
        for channel in channels { channel.flush() }
        for channel in others { channel.flush() }
        note(report)
    }

    /// With the claim held: writes what others left in the outbox meanwhile, until it is empty; then lets go
    /// of the claim. Returns the channels to flush now that their rows are written.
    func finishClaim(report: inout UsageDelivery.Report) -> [any Channel] {
        var flushing: [any Channel] = []
        while let (lines, channels) = delivery.withLock({ $0.nextOrRelease() }) {
            report.merge(write(lines))
            flushing += channels
        }
        return flushing
    }

    /// With the claim held: `lines` to the socket when it takes rows directly, else (or for what it did not
    /// take) to the spool.
    func write(_ lines: UsageLines) -> UsageDelivery.Report {
        guard !lines.isEmpty else { return UsageDelivery.Report() }
        guard case .socket(let socket) = delivery.withLock({ $0.route() }) else { return spool(lines, wake: false) }
        let written = lines.bytes.withUnsafeBytes {
            Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        }
        let error = written < 0 ? errno : 0
        guard let rest = delivery.withLock({ $0.sent(lines, written: written, error: error) }) else {
            return UsageDelivery.Report()
        }
        return spool(lines.suffix(from: rest), wake: true)
    }

    /// With the claim held: appends `lines` to the spool in one write, as many whole lines as its cap allows.
    func spool(_ lines: UsageLines, wake: Bool) -> UsageDelivery.Report {
        let plan = delivery.withLock { $0.spoolPlan() }
        let fit =
            lines.bytes.count <= plan.room
            ? (end: lines.bytes.count, lines: lines.count) : lines.wholeLines(from: 0, before: plan.room)
        var segment = plan.segment
        var spool = plan.spool
        var created = false
        var appended = 0
        var droppedLines = lines.count - fit.lines
        var reason = "spool full"
        if fit.lines > 0 {
            do {
                if segment == nil {
                    segment = try spool.create()
                    created = true
                }
                try UsageSpool.append(lines.bytes[..<fit.end], to: &segment!)
                appended = fit.end
            } catch {
                droppedLines = lines.count
                reason = error.description
            }
        }
        return delivery.withLock {
            $0.spooled(
                into: segment, created: created, spool: spool, bytes: appended, droppedLines: droppedLines,
                reason: reason, wake: wake)
        }
    }

    /// Acts on what became of rows: wakes the sender's thread, counts and logs drops.
    func note(_ report: UsageDelivery.Report) {
        if report.wake { ring() }
        guard report.dropped > 0 else { return }
        drops?.add(report.dropped, slot: worker)
        // Logged on the first drop and then about every 10,000th, not once per request.
        let before = report.droppedTotal - report.dropped
        if before == 0 || report.droppedTotal / 10_000 != before / 10_000 {
            logger.warning(
                "usage row dropped", metadata: ["reason": "\(report.reason)", "rows.dropped": "\(report.droppedTotal)"])
        }
    }

    /// Wakes the sender's thread.
    func ring() {
        var byte: UInt8 = 1
        _ = Glibc.write(bell.write, &byte, 1)
    }

    // MARK: - The sender's thread

    /// Connects, sends the spool, reads acknowledgements and adopts orphaned spool files until shutdown;
    /// then waits up to the grace for the last acknowledgements and leaves the rest in the spool.
    private func serve() {
        let clock = ContinuousClock()
        var backoff = Duration.milliseconds(50)
        var nextAdoption = clock.now
        var deadline: ContinuousClock.Instant?
        var reader = AcknowledgementReader()
        while true {
            if finishing.load(ordering: .relaxed) {
                let end = deadline ?? clock.now + shutdownGrace
                deadline = end
                if delivery.withLock({ $0.isSettled }) || clock.now >= end { break }
            }
            let (socket, broken) = delivery.withLock { ($0.socket, $0.broken) }
            if broken {
                disconnect()
                continue
            }
            guard socket >= 0 else {
                if let connection = UsageCollectorSocket.connect(to: socketPath) {
                    delivery.withLock { $0.connected(connection) }
                    reader = AcknowledgementReader()
                    backoff = .milliseconds(50)
                    logger.debug("connected to the stats collector")
                } else {
                    _ = wait(for: -1, writable: false, timeout: backoff)
                    backoff = min(backoff * 2, finishing.load(ordering: .relaxed) ? .milliseconds(100) : .seconds(1))
                }
                continue
            }
            if !finishing.load(ordering: .relaxed), clock.now >= nextAdoption {
                nextAdoption = clock.now + .seconds(2)
                adoptOrphans()
            }
            let full = pump()
            guard wait(for: socket, writable: full, timeout: .milliseconds(200)) else { continue }
            switch reader.read(socket) {
            case .acknowledged(let lines):
                let done = delivery.withLock { $0.acknowledge(lines) }
                done.forEach(UsageSpool.remove)
            case .nothing: break
            case .closed: disconnect()
            }
        }
        let left = release()
        if left > 0 { logger.notice("usage rows left in the spool for the next worker", metadata: ["rows": "\(left)"]) }
    }
}
