import NIOHTTP1
import Shared

/// Which headers cross the proxy: hop-by-hop headers never do, the client's credentials are replaced, and
/// nothing that chooses or names the pool's accounts crosses in either direction.
enum ForwardedHeaders {
    /// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus those we set ourselves.
    private static let notForwardedUpstream = HeaderNameSet([
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length", "authorization", "expect",
        // Ask for identity encoding: usage is read from the answer as it streams past.
        "accept-encoding",
        // These choose the account a request runs in: the pool's key alone decides that, and a client's
        // wrong one gets 401 mismatched_organization from OpenAI.
        "openai-organization", "openai-project",
    ])

    private static let notForwardedDownstream = HeaderNameSet([
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        // These name the pool's accounts (OpenAI sends its organization and project on every answer) or
        // carry the upstream's cookies for the gateway's own connection.
        "set-cookie", "set-cookie2", "openai-organization", "openai-project",
    ])

    private static let connection = HeaderNameSet(["connection"])

    // Both build a plain array and wrap it once: `HTTPHeaders.add` checks every byte of every name for ASCII
    // (measured: 330 instructions a header), and these names were parsed from a message or are ours.

    /// The client's headers as sent upstream, with `Authorization` carrying the upstream key, `Host` naming the
    /// upstream, and `Content-Length` when given.
    static func upstream(
        from headers: HTTPHeaders, key: String, authority: String, contentLength: Int? = nil
    ) -> HTTPHeaders {
        func build(_ named: HeaderNameSet?, detecting: Bool) -> HTTPHeaders? {
            var forwarded: [(String, String)] = []
            forwarded.reserveCapacity(headers.count + 3)
            forwarded.append(("host", authority))
            guard copy(headers, except: notForwardedUpstream, named: named, detecting: detecting, into: &forwarded)
            else { return nil }
            forwarded.append(("authorization", "Bearer " + key))
            if let contentLength { forwarded.append(("content-length", String(contentLength))) }
            return HTTPHeaders(forwarded)
        }
        return build(nil, detecting: true) ?? build(connectionListed(headers), detecting: false)!
    }

    /// The upstream's headers as sent to the client.
    static func downstream(from headers: HTTPHeaders) -> HTTPHeaders {
        func build(_ named: HeaderNameSet?, detecting: Bool) -> HTTPHeaders? {
            var forwarded: [(String, String)] = []
            forwarded.reserveCapacity(headers.count + 1)
            guard copy(headers, except: notForwardedDownstream, named: named, detecting: detecting, into: &forwarded)
            else { return nil }
            return HTTPHeaders(forwarded)
        }
        return build(nil, detecting: true) ?? build(connectionListed(headers), detecting: false)!
    }

    /// Appends to `forwarded` the headers neither in `dropped` nor in `named`, in one pass. With `detecting`,
    /// false as soon as a `Connection` header turns out to name other headers (rare): the caller then
    /// starts again with those names, instead of every request paying a second pass to look for them.
    private static func copy(
        _ headers: HTTPHeaders, except dropped: HeaderNameSet, named: HeaderNameSet?, detecting: Bool,
        into forwarded: inout [(String, String)]
    ) -> Bool {
        for (name, value) in headers {
            if dropped.contains(name) {
                if detecting, connection.contains(name), !HeaderName.matches(value, "keep-alive"),
                    !HeaderName.matches(value, "close")
                {
                    return false
                }
                continue
            }
            if named?.contains(name) == true { continue }
            forwarded.append((name, value))
        }
        return true
    }

    /// Header names a `Connection` header lists other than its usual `keep-alive` or `close` (which name
    /// no header we would forward anyway); nil when there are none, as almost always.
    private static func connectionListed(_ headers: HTTPHeaders) -> HeaderNameSet? {
        var named: [String] = []
        for (name, value) in headers where connection.contains(name) {
            if value.equalsIgnoringASCIICase("keep-alive") || value.equalsIgnoringASCIICase("close") { continue }
            for token in value.split(separator: ",") { named.append(token.trimmingWhitespace().lowercased()) }
        }
        return named.isEmpty ? nil : HeaderNameSet(named)
    }
}

/// A set of header names matched without regard to ASCII case and without allocating: every request
/// checks each of its headers against one of these sets.
struct HeaderNameSet {
    /// Lowercase names, indexed by their length.
    private var byLength: [[[UInt8]]] = []

    /// A set of these names (any case).
    init(_ names: [String]) {
        for name in names {
            let bytes = Array(name.lowercased().utf8)
            while byLength.count <= bytes.count { byLength.append([]) }
            byLength[bytes.count].append(bytes)
        }
    }

    /// True when `name` is in the set, in any case.
    func contains(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            guard bytes.count < byLength.count else { return false }
            for candidate in byLength[bytes.count] where Self.equal(bytes, candidate) { return true }
            return false
        }
    }

    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: [UInt8]) -> Bool {
        for index in 0..<bytes.count where bytes[index].asciiLowercased != lowercase[index] { return false }
        return true
    }
}
