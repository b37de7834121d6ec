import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Keep-alive connections to the upstream for one event loop; used only on that loop, so it needs no lock.
final class UpstreamPool {
    private let loop: any EventLoop
    private let target: UpstreamTarget
    private let connectTimeout: TimeAmount
    private let readTimeout: TimeAmount
    private let maximumIdle: Int
    private var idle: [UpstreamConnection] = []

    init(
        loop: any EventLoop, target: UpstreamTarget, connectTimeout: TimeAmount, readTimeout: TimeAmount,
        maximumIdle: Int = 512
    ) {
        self.loop = loop
        self.target = target
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.maximumIdle = maximumIdle
    }

    /// Idle connections waiting for a request.
    var idleCount: Int { idle.count }

    /// A connection for one request: the most recently used idle one, else a new one.
    func acquire(connectTimeout: TimeAmount? = nil) -> EventLoopFuture<UpstreamConnection> {
        if let connection = takeIdle() { return loop.assumeIsolated().makeSucceededFuture(connection) }
        return connect(timeout: connectTimeout)
    }

    /// The most recently used idle connection that is still fit for a request, if any; those idle too long
    /// are closed on the way.
    func takeIdle() -> UpstreamConnection? {
        while let connection = idle.popLast() {
            // Idle for long, the upstream has likely dropped it; don't gamble a request on it.
            if connection.channel.isActive, NIODeadline.now() - connection.idleSince < .seconds(30) {
                return connection
            }
            connection.channel.close(promise: nil)
        }
        return nil
    }

    /// A brand-new connection, for a retry after a reused one failed or for a WebSocket handshake (`upgrading`:
    /// bytes that follow the `101` are kept for the frame decoder); `timeout` overrides the pool's.
    func connect(timeout: TimeAmount? = nil, upgrading: Bool = false) -> EventLoopFuture<UpstreamConnection> {
        let target = target
        let handler = NIOLoopBound(UpstreamResponseHandler(readTimeout: readTimeout), eventLoop: loop)
        let encoder = NIOLoopBound(UpstreamRequestEncoder(), eventLoop: loop)
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(timeout ?? connectTimeout)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls = target.tls {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: target.serverName))
                    }
                    // NIO's client handlers but for the encoder (`UpstreamRequestEncoder`), and without outbound
                    // header validation: every header we send was parsed (and so validated) from the client's
                    // request, or is ours (a validated key, the host). The decoder learns each request's method
                    // from the head passing it, for the answer to a HEAD.
                    try pipeline.addHandler(encoder.value)
                    try pipeline.addHandler(
                        ByteToMessageHandler(
                            HTTPResponseDecoder(leftOverBytesStrategy: upgrading ? .forwardBytes : .dropBytes)))
                    try pipeline.addHandler(handler.value)
                }
            }
            .connect(host: target.host, port: target.port)
        return connected.flatMapErrorThrowing { error in
            throw UpstreamError.connectFailed(Self.describe(error))
        }.assumeIsolated().map { channel in
            let connection = UpstreamConnection(channel: channel, requestEncoder: encoder.value)
            handler.value.connection = connection
            handler.value.onClose = { [weak self] closed in self?.forget(closed) }
            return connection
        }.nonisolated()
    }

    /// Returns a connection whose answer ended cleanly and that may be reused.
    func release(_ connection: UpstreamConnection) {
        connection.delegate = nil
        connection.servedBefore = true
        connection.awaitingHead = false
        guard connection.channel.isActive, idle.count < maximumIdle else {
            connection.channel.close(promise: nil)
            return
        }
        connection.idleSince = .now()
        // Reading was paused while the client could not keep up (backpressure): on again. Only then: setting
        // a channel option costs casts and a lookup, and almost no answer was ever paused.
        if connection.readingPaused {
            connection.readingPaused = false
            try? connection.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
        idle.append(connection)
    }

    private func forget(_ connection: UpstreamConnection) {
        idle.removeAll { $0 === connection }
    }

    /// A short reason for a failed connection attempt, such as `connection refused`.
    static func describe(_ error: any Error) -> String {
        if let error = error as? ChannelError, case .connectTimeout = error { return "connection timed out" }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first { return describe(first.error) }
            return error.dnsAError != nil || error.dnsAAAAError != nil ? "host name not found" : "connection failed"
        }
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        if error is NIOSSLError { return "TLS handshake failed" }
        return "\(error)"
    }
}
