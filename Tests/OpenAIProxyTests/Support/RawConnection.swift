import Foundation

/// A plain TCP connection to a local port, for what no HTTP client sends: half a request head, a body that
/// never comes. Reads never block; `waitFor(_:timeout:until:)` waits on many connections at once with `poll`.
final class RawConnection {
    private let descriptor: Int32
    /// Everything received so far.
    private(set) var received: [UInt8] = []
    /// The other side closed (or reset) the connection, or `close()` was called.
    private(set) var isClosed = false

    /// Why a connection could not be made.
    struct Failure: Error {
        let errno: Int32
    }

    /// Connects to `127.0.0.1:port`.
    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let status = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else {
            let error = errno
            Glibc.close(descriptor)
            throw Failure(errno: error)
        }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    }

    deinit { close() }

    /// What was received, as text.
    var text: String { String(decoding: received, as: UTF8.self) }

    /// Sends `text`; false when the connection no longer takes it.
    @discardableResult
    func send(_ text: String) -> Bool {
        guard !isClosed else { return false }
        let bytes = Array(text.utf8)
        let sent = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return sent == bytes.count
    }

    /// Closes this side.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(descriptor)
    }

    /// Reads what is there without waiting; notes the other side's close.
    private func readAvailable() {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while !isClosed {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
            } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                close()
            } else {
                return
            }
        }
    }

    /// Reads from `connections` as bytes arrive until `done` holds for each of them or `timeout` passes;
    /// `tick` runs between waits (to send more). Returns whether `done` held for all.
    static func waitFor(
        _ connections: [RawConnection], timeout: Duration, until done: (RawConnection) -> Bool,
        tick: () -> Void = {}
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let waiting = connections.filter { !done($0) && !$0.isClosed }
            if waiting.isEmpty || ContinuousClock.now >= deadline { break }
            var descriptors = waiting.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
            _ = poll(&descriptors, nfds_t(descriptors.count), 50)
            for (connection, entry) in zip(waiting, descriptors) where entry.revents != 0 {
                connection.readAvailable()
            }
            tick()
            await Task.yield()
        }
        return connections.allSatisfy(done)
    }
}
