import CSystemd
import Foundation
import Glibc
import Logging
import Synchronization

/// Accepts connections on a listening socket shared by several processes, on a thread of its own.
///
/// NIO assumes it owns a listening socket alone: when several processes watch one socket with epoll every
/// one of them wakes for each connection, and the losers' empty accept trips an assertion in NIO's debug
/// builds. Epoll also favours one process (an `EPOLLEXCLUSIVE` waker is not rotated), so one worker ended
/// up holding every keep-alive connection. A blocking `accept` instead queues the waiting threads of all
/// processes in turn, so connections are spread across workers. `SO_RCVTIMEO` bounds each wait so `stop()`
/// is noticed; the accepted sockets are handed to NIO as ordinary connected sockets.
public final class SharedSocketAcceptor: Sendable {
    private let listener: Int32
    private let stopping = Atomic<Bool>(false)
    private let logger: Logger
    private let holdBack: @Sendable () -> Bool
    private let onAccept: @Sendable () -> Void
    private let cap: ConnectionCap?

    /// Why the acceptor could not start.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// An acceptor for `listener`, which it owns and closes when stopped. While `holdBack` says so (this
    /// process holds more than its share of connections), it waits up to a few milliseconds before
    /// accepting, so the other processes take the next connections; `onAccept` runs on the accepting
    /// thread right after each accept, so counts are current before the next decision. While `cap` has no room
    /// it does not accept at all: new connections wait in the listen backlog (or go to another process).
    public init(
        listener: Int32, logger: Logger, holdBack: @escaping @Sendable () -> Bool = { false },
        onAccept: @escaping @Sendable () -> Void = {}, cap: ConnectionCap? = nil
    ) throws {
        // Every process sharing the socket sets the same blocking mode and wait bound.
        let flags = fcntl(listener, F_GETFL)
        var wait = timeval(tv_sec: 0, tv_usec: 100_000)
        guard flags >= 0, fcntl(listener, F_SETFL, flags & ~O_NONBLOCK) == 0,
            setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size)) == 0
        else {
            throw Failure(
                description:
                    "descriptor \(listener) is not a usable listening socket: \(String(cString: strerror(errno)))")
        }
        self.listener = listener
        self.logger = logger
        self.holdBack = holdBack
        self.onAccept = onAccept
        self.cap = cap
    }

    /// Starts accepting; the stream yields each accepted socket and ends after `stop()`.
    public func connections() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let thread = Thread { [self] in
            var lastCapReport: ContinuousClock.Instant?
            while !stopping.load(ordering: .relaxed) {
                if let cap, !cap.hasRoom {
                    // At most once a minute, not per connection: a busy worker stays at its cap for a while.
                    let now = ContinuousClock.now
                    if lastCapReport.map({ now - $0 >= .seconds(60) }) ?? true {
                        lastCapReport = now
                        logger.warning(
                            "connection cap reached: new connections wait in the listen backlog until one closes",
                            metadata: ["connections": "\(cap.current)", "cap": "\(cap.limit)"])
                    }
                    // Woken by the next close (or by stop); the bound is only a safety net.
                    cap.waitForRoom(bound: .seconds(1))
                    continue
                }
                // Bounded: a busy process still accepts after 8 ms, so a stale count (a worker that
                // died) can delay connections, never strand them.
                var waited = 0
                while waited < 8, holdBack() {
                    usleep(1000)
                    waited += 1
                }
                let fd = openai_proxy_accept(listener)
                if fd >= 0 {
                    onAccept()
                    continuation.yield(fd)
                    // A burst of connections would otherwise all go to whichever process woke first, as
                    // it finds the queue full when it comes back; yielding lets the others take their turn.
                    sched_yield()
                    continue
                }
                switch errno {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
                    // The wait bound passed, or the connection went away before we took it.
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    logger.error("accept failed: \(String(cString: strerror(errno))); backing off")
                    usleep(50_000)
                default:
                    logger.error("accept failed: \(String(cString: strerror(errno)))")
                    usleep(50_000)
                }
            }
            close(listener)
            continuation.finish()
        }
        thread.name = "acceptor"
        thread.start()
        return stream
    }

    /// Stops accepting within about 100 ms; connections already accepted are still delivered.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        cap?.wake()
    }
}
