import NIOCore
import NIOSSL
import Shared

/// Where upstream connections go: host, port, TLS, and what requests say in `Host`.
struct UpstreamTarget: Sendable {
    /// Host name or address to connect to.
    let host: String
    /// TCP port.
    let port: Int
    /// The path every upstream path is put under, such as `/v1`.
    let pathPrefix: String
    /// The `Host` header value.
    let authority: String
    /// TLS settings for https upstreams, nil for plain http.
    let tls: NIOSSLContext?
    /// The name sent in TLS SNI and checked against the certificate; nil for an IP address, which SNI
    /// cannot carry (the certificate is then checked against the address connected to).
    let serverName: String?

    /// The target for a configured base URL; fails only if TLS cannot be set up.
    init(_ url: UpstreamBaseURL) throws {
        host = url.host
        port = url.port ?? (url.isTLS ? 443 : 80)
        pathPrefix = url.pathPrefix
        serverName = (try? SocketAddress(ipAddress: url.host, port: 0)) == nil ? url.host : nil
        let hostPart = url.host.contains(":") ? "[\(url.host)]" : url.host
        authority = url.port.map { "\(hostPart):\($0)" } ?? hostPart
        if url.isTLS {
            var configuration = TLSConfiguration.makeClientConfiguration()
            // The pool speaks HTTP/1.1 only.
            configuration.applicationProtocols = ["http/1.1"]
            tls = try NIOSSLContext(configuration: configuration)
        } else {
            tls = nil
        }
    }
}
