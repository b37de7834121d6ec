/// The validated base URL requests are forwarded to, such as `https://api.openai.com/v1`.
public struct UpstreamBaseURL: Sendable, Equatable, CustomStringConvertible {
    /// `http` or `https`.
    public let scheme: String
    /// Host name or address, without brackets.
    public let host: String
    /// Explicit port, or nil for the scheme's default.
    public let port: Int?
    /// Path prefix without a trailing slash, such as `/v1`; empty for none.
    public let pathPrefix: String

    /// OpenAI's own API.
    public static let openAI = UpstreamBaseURL(parsing: "https://api.openai.com/v1")!

    /// Parses an absolute http(s) URL without query or fragment; nil when malformed.
    public init?(parsing text: String) {
        let text = text.trimmingWhitespace()
        let schemeEnd: String.Index
        if let range = text.range(of: "://") {
            schemeEnd = range.lowerBound
        } else {
            return nil
        }
        let scheme = text[..<schemeEnd].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = text[text.index(schemeEnd, offsetBy: 3)...]
        guard !rest.contains("?"), !rest.contains("#"), !rest.contains("@") else { return nil }
        let authority: Substring
        let path: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[slash...]
        } else {
            authority = rest
            path = ""
        }
        var host: Substring
        var port: Int?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else { return nil }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = value
        } else {
            host = authority
        }
        if let port, !(1...65535).contains(port) { return nil }
        guard !host.isEmpty, !host.contains(" ") else { return nil }
        var prefix = String(path)
        while prefix.hasSuffix("/") { prefix.removeLast() }
        self.scheme = scheme
        self.host = String(host)
        self.port = port
        self.pathPrefix = prefix
    }

    /// True for `https`.
    public var isTLS: Bool { scheme == "https" }

    /// `scheme://host[:port]`, the origin requests go to.
    public var origin: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return port.map { "\(scheme)://\(hostPart):\($0)" } ?? "\(scheme)://\(hostPart)"
    }

    /// The full URL for a path below the prefix (`path` starts with `/`), plus an optional raw query.
    public func url(forPath path: String, query: String? = nil) -> String {
        var url = origin + pathPrefix + path
        if let query, !query.isEmpty { url += "?" + query }
        return url
    }

    /// The URL as configured, normalised.
    public var description: String { origin + pathPrefix }
}
