import Glibc
import Shared

/// The sender thread's work: replaying the spool, reconnecting, adopting orphans, waiting for the socket.
extension UsageSender {
    /// Runs `body` holding the claim to the socket and the spool (waiting for an event loop that holds it to
    /// finish its write: microseconds), then writes what the event loops left in the outbox meanwhile.
    func withClaim(_ body: () -> UsageDelivery.Report) {
        while !delivery.withLock({ $0.claim() }) { sched_yield() }
        var report = body()
        let flushing = finishClaim(report: &report)
        for channel in flushing { channel.flush() }
        note(report)
    }

    /// Sends what is owed, then spooled rows, as far as the socket takes them without blocking and the
    /// in-flight limit allows; once the spool is all sent, rows go straight to the socket again. Returns
    /// true when it stopped because the socket was full.
    func pump() -> Bool {
        // Rows going direct: nothing to send, and the claim is left to the event loops. A thread that took it
        // and was then descheduled would hold up every answer of the worker meanwhile.
        guard delivery.withLock({ $0.needsPump }) else { return false }
        var full = false
        withClaim {
            while true {
                let step = delivery.withLock { $0.pumpStep() }
                let more: Bool
                switch step {
                case .idle(let socketFull):
                    full = socketFull
                    return UsageDelivery.Report()
                case .owed(let socket, let bytes):
                    let written = Self.send(bytes[...], on: socket)
                    let error = written < 0 ? errno : 0
                    more = delivery.withLock { $0.owedSent(written: written, error: error) }
                case .segment(let socket, let index, let file, let from):
                    let chunk = UsageSpool.lines(of: file, from: from)
                    let written = chunk.isEmpty ? 0 : Self.send(chunk[...], on: socket)
                    let error = written < 0 ? errno : 0
                    more = delivery.withLock {
                        $0.segmentSent(index: index, chunk: chunk, written: written, error: error)
                    }
                }
                guard more else {
                    full = !delivery.withLock { $0.broken }
                    return UsageDelivery.Report()
                }
            }
        }
        return full
    }

    /// Closes the connection; rows it carried that were not acknowledged go to the spool, and the whole
    /// spool is to be sent again on the next one.
    func disconnect() {
        let respooled = closeConnection()
        logger.debug("stats collector connection lost", metadata: ["rows.respooled": "\(respooled)"])
    }

    /// At exit: rows not acknowledged go to the spool, and every segment is let go for another worker.
    /// Returns how many rows went back to the spool.
    func release() -> Int {
        let respooled = closeConnection()
        withClaim {
            delivery.withLock { $0.releaseSegments() }.forEach(UsageSpool.release)
            return UsageDelivery.Report()
        }
        return respooled
    }

    private func closeConnection() -> Int {
        var respooled = 0
        withClaim {
            let (socket, unacknowledged) = delivery.withLock { $0.disconnect() }
            if socket >= 0 { close(socket) }
            var report = UsageDelivery.Report()
            for lines in unacknowledged {
                respooled += lines.count
                report.merge(spool(lines, wake: false))
            }
            return report
        }
        return respooled
    }

    /// Takes over the spool segments of workers that are gone.
    func adoptOrphans() {
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

    /// Waits until `socket` has something to read (true), it can be written when `writable`, the bell
    /// rings, or `timeout` passes.
    func wait(for socket: Int32, writable: Bool, timeout: Duration) -> Bool {
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

    private static func send(_ bytes: ArraySlice<UInt8>, on socket: Int32) -> Int {
        bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
    }
}

/// The worker's end of the collector's Unix socket.
enum UsageCollectorSocket {
    /// A non-blocking connection to the collector's socket at `path`, or nil when it is not there.
    static func connect(to path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8CString)
        guard bytes.count <= MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            return nil
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            bytes.withUnsafeBytes { raw.copyMemory(from: $0) }
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
}

/// Reads `a<N>\n` acknowledgements from the collector's socket, across partial reads.
struct AcknowledgementReader {
    enum Result {
        /// The highest acknowledgement read.
        case acknowledged(UInt64)
        /// Nothing complete yet.
        case nothing
        /// The collector closed the connection (or sent something that is no acknowledgement).
        case closed
    }

    private var partial: [UInt8] = []
    /// Where each read lands: made once, not zeroed and freed on every read (a 4 KiB memset a read).
    private var buffer = [UInt8](repeating: 0, count: 4096)

    /// Reads what the socket has, without blocking.
    mutating func read(_ socket: Int32) -> Result {
        let count = buffer.withUnsafeMutableBytes { Glibc.read(socket, $0.baseAddress, $0.count) }
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
