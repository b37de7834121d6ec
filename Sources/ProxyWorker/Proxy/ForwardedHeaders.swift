import NIOHTTP1
import Shared

/// Which headers cross the proxy: hop-by-hop headers never do, and the client's credentials are replaced.
enum ForwardedHeaders {
    /// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus those we set ourselves.
    private static let notForwardedUpstream: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length", "authorization", "expect",
        // Ask for identity encoding: usage is read from the answer as it streams past.
        "accept-encoding",
    ]

    private static let notForwardedDownstream: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// The client's headers as sent upstream, with `Authorization` carrying the upstream key and `Host`
    /// naming the upstream.
    static func upstream(from headers: HTTPHeaders, key: String, authority: String) -> HTTPHeaders {
        let named = connectionListed(headers)
        var forwarded = HTTPHeaders()
        forwarded.reserveCapacity(headers.count + 2)
        forwarded.add(name: "host", value: authority)
        for (name, value) in headers {
            if isListed(name, in: notForwardedUpstream) || isListed(name, in: named) { continue }
            forwarded.add(name: name, value: value)
        }
        forwarded.add(name: "authorization", value: "Bearer " + key)
        return forwarded
    }

    /// The upstream's headers as sent to the client.
    static func downstream(from headers: HTTPHeaders) -> HTTPHeaders {
        let named = connectionListed(headers)
        var forwarded = HTTPHeaders()
        forwarded.reserveCapacity(headers.count)
        for (name, value) in headers {
            if isListed(name, in: notForwardedDownstream) || isListed(name, in: named) { continue }
            forwarded.add(name: name, value: value)
        }
        return forwarded
    }

    /// Header names a `Connection` header lists (lowercased); usually none, or `keep-alive`/`close`.
    private static func connectionListed(_ headers: HTTPHeaders) -> [String] {
        var named: [String] = []
        for value in headers["connection"] {
            for token in value.split(separator: ",") { named.append(token.trimmingWhitespace().lowercased()) }
        }
        return named
    }

    private static func isListed(_ name: String, in lowercaseNames: [String]) -> Bool {
        lowercaseNames.contains { name.equalsIgnoringASCIICase($0) }
    }
}
