import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Shared
import Synchronization

/// Sends usage rows to the stats collector over its Unix socket, and keeps each row until the collector
/// acknowledges that it is committed: in memory while it is on its way, in the spool (on disk) while the
/// collector cannot take it.
///
/// `record` never blocks a request and costs one non-blocking `send` (or, with the collector away, one
/// `write` to the spool), made before the answer's end is written, so a row survives the worker being
/// killed right after. A thread of its own reconnects, reads acknowledgements, replays the spool and takes
/// over the spool files of workers that died. At the spool's cap rows are dropped, counted and logged.
final class UsageSender: Service, Sendable {
    private let socketPath: String
    private let worker: Int
    private let drops: UsageDropBoard?
    private let logger: Logger
    private let delivery: Mutex<UsageDelivery>
    private let bell: (read: Int32, write: Int32)
    private let finishing = Atomic<Bool>(false)
    private let shutdownGrace: Duration

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

    /// Hands a finished request's row to the collector, or to the spool; never blocks.
    func record(_ row: UsageRow) {
        let line = UsageWire.encode(row)
        note(delivery.withLock { $0.take(line) })
    }

    /// Hands a per-minute count of refused requests to the collector, or to the spool, like a row.
    func record(_ count: RefusedCount) {
        note(delivery.withLock { $0.take(UsageWire.encode(count)) })
    }

    /// Rows recorded and not yet acknowledged by the collector.
    var pending: Int { queued.count }

    /// Those rows themselves, spooled ones first (tests and tools).
    var queued: [UsageRow] { delivery.withLock { $0.unacknowledged } }

    /// Rows dropped because the spool was full or could not be written.
    var dropped: Int { delivery.withLock { $0.dropped } }

    /// Bytes in the spool held by this worker.
    var spooledBytes: Int { delivery.withLock { $0.spooledBytes } }

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

    private func note(_ outcome: UsageDelivery.Outcome) {
        switch outcome {
        case .sent, .spooled(wake: false):
            return
        case .spooled(wake: true):
            ring()
        case .dropped(let total, let reason):
            drops?.add(1, slot: worker)
            // Logged on the first drop and then every 10,000th, not once per request.
            if total == 1 || total % 10_000 == 0 {
                logger.warning("usage row dropped", metadata: ["reason": "\(reason)", "rows.dropped": "\(total)"])
            }
        }
    }

    private func ring() {
        var byte: UInt8 = 1
        _ = write(bell.write, &byte, 1)
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
                if let connection = connect() {
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
            let full = delivery.withLock { $0.pump() }
            guard wait(for: socket, writable: full, timeout: .milliseconds(200)) else { continue }
            switch reader.read(socket) {
            case .acknowledged(let lines): delivery.withLock { $0.acknowledge(lines) }
            case .nothing: break
            case .closed: disconnect()
            }
        }
        let outcomes = delivery.withLock { $0.release() }
        outcomes.forEach(note)
        let left = outcomes.count
        if left > 0 { logger.notice("usage rows left in the spool for the next worker", metadata: ["rows": "\(left)"]) }
    }

    private func disconnect() {
        let outcomes = delivery.withLock { $0.disconnect() }
        outcomes.forEach(note)
        logger.debug("stats collector connection lost", metadata: ["rows.respooled": "\(outcomes.count)"])
    }

    private func adoptOrphans() {
        let (spool, held, budget) = delivery.withLock {
            ($0.spool, Set($0.segments.map(\.file.path)), $0.spoolCapacity - $0.spooledBytes)
        }
        let orphans = spool.adoptOrphans(excluding: held, budget: budget)
        guard !orphans.isEmpty else { return }
        delivery.withLock { $0.adopt(orphans) }
        logger.info(
            "replaying usage rows spooled by a worker that is gone",
            metadata: ["files": "\(orphans.count)", "bytes": "\(orphans.reduce(0) { $0 + $1.size })"])
    }

    /// A non-blocking connection to the collector's socket, or nil when it is not there.
    private func connect() -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8CString)
        guard path.count <= MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            return nil
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            path.withUnsafeBytes { raw.copyMemory(from: $0) }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Waits until `socket` has something to read (true), it can be written when `writable`, the bell
    /// rings, or `timeout` passes.
    private func wait(for socket: Int32, writable: Bool, timeout: Duration) -> Bool {
        var fds = [pollfd(fd: bell.read, events: Int16(POLLIN), revents: 0)]
        if socket >= 0 {
            fds.append(pollfd(fd: socket, events: Int16(POLLIN) | (writable ? Int16(POLLOUT) : 0), revents: 0))
        }
        let ready = poll(&fds, nfds_t(fds.count), Int32(timeout.inMilliseconds))
        guard ready > 0 else { return false }
        if fds[0].revents != 0 {
            var scratch = [UInt8](repeating: 0, count: 64)
            while read(bell.read, &scratch, scratch.count) > 0 {}
        }
        return fds.count > 1 && fds[1].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0
    }
}

/// Reads `a<N>\n` acknowledgements from the collector's socket, across partial reads.
private struct AcknowledgementReader {
    enum Result {
        /// The highest acknowledgement read.
        case acknowledged(UInt64)
        /// Nothing complete yet.
        case nothing
        /// The collector closed the connection (or sent something that is no acknowledgement).
        case closed
    }

    private var partial: [UInt8] = []

    /// Reads what the socket has, without blocking.
    mutating func read(_ socket: Int32) -> Result {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(socket, &buffer, buffer.count)
        if count == 0 { return .closed }
        if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .nothing : .closed }
        partial += buffer[..<count]
        var highest: UInt64?
        while let end = partial.firstIndex(of: UInt8(ascii: "\n")) {
            guard let lines = UsageWire.decodeAcknowledgement(partial[..<end]) else { return .closed }
            highest = max(highest ?? 0, lines)
            partial.removeFirst(end + 1)
        }
        return highest.map { .acknowledged($0) } ?? .nothing
    }
}
