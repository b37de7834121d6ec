import Glibc
import Shared

/// Which `Host` values the admin server answers, against DNS rebinding: a page on a name the attacker
/// controls, re-pointed at the admin address, reaches the console with its own name as `Host`.
///
/// Allowed: `localhost` (any port), any IP literal (`127.0.0.1`, `[::1]`, the listen address — a rebinding
/// page always sends its own name, never an address), the listen host when it is a name, and the entries
/// of `OPENAI_PROXY_ADMIN_HOSTS` (`name` matches any port, `name:port` that port only). A request without
/// `Host` (HTTP/1.0, not a browser) is answered.
struct AdminHostPolicy: Sendable, Equatable {
    /// Host names allowed on any port, lowercased.
    let names: Set<String>
    /// `host:port` values allowed as they are, lowercased.
    let authorities: Set<String>

    /// The policy for an admin server listening on `listen` with `extra` allowed hosts.
    init(listen: ListenAddress, extra: [String]) {
        var names: Set<String> = ["localhost", listen.host.lowercased()]
        var authorities: Set<String> = []
        for entry in extra.map({ $0.lowercased() }) {
            if Self.split(entry).port != nil { authorities.insert(entry) } else { names.insert(Self.split(entry).host) }
        }
        self.names = names
        self.authorities = authorities
    }

    /// Whether a request with this `Host` value (nil when absent) is answered.
    func allows(_ authority: String?) -> Bool {
        guard let authority else { return true }
        let lowered = authority.lowercased()
        let parts = Self.split(lowered)
        var host = parts.host
        if host.hasSuffix(".") { host.removeLast() }
        if host.isEmpty { return false }
        if Self.isAddressLiteral(host) || names.contains(host) { return true }
        return authorities.contains(lowered) || authorities.contains(host + (parts.port.map { ":\($0)" } ?? ""))
    }

    /// `host` and `port` of `name`, `name:port`, `[v6]` or `[v6]:port`; a bracketed host keeps no brackets.
    static func split(_ authority: String) -> (host: String, port: String?) {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return (authority, nil) }
            let host = String(authority[authority.index(after: authority.startIndex)..<close])
            let rest = authority[authority.index(after: close)...]
            return (host, rest.hasPrefix(":") ? String(rest.dropFirst()) : nil)
        }
        guard let colon = authority.lastIndex(of: ":"), !authority[..<colon].contains(":") else {
            return (authority, nil)
        }
        return (String(authority[..<colon]), String(authority[authority.index(after: colon)...]))
    }

    /// Whether `host` is an IPv4 dotted quad or an IPv6 address.
    static func isAddressLiteral(_ host: String) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, host, &buffer) == 1 || inet_pton(AF_INET6, host, &buffer) == 1
    }
}
