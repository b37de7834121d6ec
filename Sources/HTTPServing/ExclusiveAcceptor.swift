import CSystemd
import Foundation
import Glibc
import Logging
import Synchronization

/// Accepts connections on a listening socket shared by several processes, on a thread of its own.
///
/// NIO assumes it owns a listening socket alone: when several processes watch one socket every one of them
/// wakes for each connection, and the losers' empty accept trips an assertion in NIO's debug builds. Here
/// each process waits with `EPOLLEXCLUSIVE`, so the kernel wakes one waiter per connection, and accepts
/// itself; the accepted sockets are then handed to NIO as ordinary connected sockets.
final class ExclusiveAcceptor: Sendable {
    private let listener: Int32
    private let poller: Int32
    private let stopping = Atomic<Bool>(false)
    private let logger: Logger

    /// Why the acceptor could not start.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// An acceptor for `listener`, which it owns and closes when stopped.
    init(listener: Int32, logger: Logger) throws {
        let flags = fcntl(listener, F_GETFL)
        guard flags >= 0, fcntl(listener, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw Failure(
                description:
                    "descriptor \(listener) is not a usable listening socket: \(String(cString: strerror(errno)))")
        }
        let poller = openai_proxy_exclusive_poller(listener)
        guard poller >= 0 else {
            throw Failure(description: "cannot watch listening socket \(listener): \(String(cString: strerror(errno)))")
        }
        self.listener = listener
        self.poller = poller
        self.logger = logger
    }

    /// Starts accepting; the stream yields each accepted socket and ends after `stop()`.
    func connections() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let thread = Thread { [self] in
            while !stopping.load(ordering: .relaxed) {
                // The timeout bounds how long `stop()` takes to be noticed.
                guard openai_proxy_poller_wait(poller, 100) > 0 else { continue }
                acceptPending(into: continuation)
            }
            close(poller)
            close(listener)
            continuation.finish()
        }
        thread.name = "acceptor"
        thread.start()
        return stream
    }

    /// Stops accepting within about 100 ms; connections already accepted are still delivered.
    func stop() {
        stopping.store(true, ordering: .relaxed)
    }

    private func acceptPending(into continuation: AsyncStream<Int32>.Continuation) {
        while true {
            let fd = openai_proxy_accept(listener)
            if fd >= 0 {
                continuation.yield(fd)
                continue
            }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO:
                continue
            case EAGAIN, EWOULDBLOCK:
                // Another process took it, or the queue is drained.
                return
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                logger.error("accept failed: \(String(cString: strerror(errno))); backing off")
                usleep(50_000)
                return
            default:
                logger.error("accept failed: \(String(cString: strerror(errno)))")
                usleep(50_000)
                return
            }
        }
    }
}
