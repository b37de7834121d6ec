import Glibc
import Shared

/// A TCP socket the supervisor binds once and hands to its children, so the port stays bound while
/// any child restarts and the kernel's accept queue holds connections for whichever child is free.
public struct ListeningSocket: Sendable {
    /// The descriptor (close-on-exec, numbered above the ones children receive).
    public let descriptor: Int32
    /// The address actually bound (port filled in when 0 was asked for).
    public let address: ListenAddress

    /// Why a socket could not be bound.
    public struct Failure: Error, CustomStringConvertible {
        /// One line for the operator.
        public let description: String
    }

    /// Binds and listens on `address`.
    public static func bind(_ address: ListenAddress, backlog: Int32 = 1024) throws(Failure) -> ListeningSocket {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(address.host, String(address.port), &hints, &list)
        guard status == 0, let first = list else {
            throw Failure(description: "cannot listen on \(address): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let info = first.pointee
        let fd = socket(info.ai_family, info.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "cannot listen on \(address): \(errorText())") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard Glibc.bind(fd, info.ai_addr, info.ai_addrlen) == 0, listen(fd, backlog) == 0 else {
            let reason = errorText()
            Glibc.close(fd)
            throw Failure(description: "cannot listen on \(address): \(reason)")
        }
        // Keep the descriptor clear of 3 and 4, which children receive: dup2 onto its own number would
        // leave close-on-exec set.
        let high = fcntl(fd, F_DUPFD_CLOEXEC, 10)
        Glibc.close(fd)
        guard high >= 0 else { throw Failure(description: "cannot listen on \(address): \(errorText())") }
        return ListeningSocket(
            descriptor: high, address: ListenAddress(host: address.host, port: boundPort(high) ?? address.port))
    }

    /// Closes the descriptor in this process.
    public func close() {
        _ = Glibc.close(descriptor)
    }

    private static func boundPort(_ fd: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    Int(UInt16(bigEndian: $0.pointee.sin6_port))
                }
            }
        default:
            return nil
        }
    }
}

func errorText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
