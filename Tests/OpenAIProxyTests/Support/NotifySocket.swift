import Foundation
import Synchronization

/// A datagram socket standing in for systemd's notify socket: point `NOTIFY_SOCKET` at `path` and read
/// what the service reports (`READY=1`, `STATUS=…`, `STOPPING=1`, …).
final class NotifySocket: Sendable {
    /// The socket's path.
    let path: String
    private let descriptor: Int32
    private let received = Mutex<[String]>([])

    init(path: String) {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            precondition(bytes.count < raw.count, "socket path too long")
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        precondition(bound == 0, "bind \(path): \(String(cString: strerror(errno)))")
    }

    /// Every message received so far (reads what is pending first).
    var messages: [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            let message = String(decoding: buffer[0..<count], as: UTF8.self)
            received.withLock { $0.append(message) }
        }
        return received.withLock { $0 }
    }

    /// True once a message containing `assignment` (such as `READY=1`) arrived.
    func saw(_ assignment: String) -> Bool {
        messages.contains { $0.split(separator: "\n").contains { $0 == assignment } }
    }

    deinit {
        close(descriptor)
        unlink(path)
    }
}
