import AsyncHTTPClient
import HTTPServing
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared

/// The proxy worker role: serves `/v1/*` on the listening socket inherited from the supervisor.
public enum ProxyWorker {
    /// Runs a worker until SIGTERM, then drains in-flight requests for up to the drain timeout.
    public static func run(
        configuration: ProxyConfiguration, index: Int, listener: Int32, onServing: @escaping @Sendable () -> Void
    ) async throws {
        let logger = Logger(label: "openai-proxy")
        let database = try ProxyDatabase.open(at: configuration.paths.database, migrate: false)
        let box = SecretBox(secret: try SecretMaterial.encryptionSecret(for: configuration, create: false))
        let store = SnapshotStore()
        let refresher = SnapshotRefresher(
            database: database, box: box, store: store, interval: .milliseconds(250), logger: logger)
        try await refresher.loadInitial()

        let client = HTTPClient(
            eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton),
            configuration: upstreamClientConfiguration())
        let usage = UsageSender(socketPath: configuration.paths.statsSocket, logger: logger)
        let handler = ProxyHandler(
            upstream: configuration.upstreamBaseURL, client: client, snapshots: store,
            selector: KeySelector(strategy: configuration.rotationStrategy, database: database), usage: usage,
            worker: index, maxBodyBytes: configuration.maxBodyBytes, logger: logger)
        let server = InheritedSocketServer(
            descriptor: listener, responder: buildRouter(handler: handler, index: index).buildResponder(),
            logger: logger, onServing: onServing)

        // Shut down in reverse: stop accepting and drain first, then stop refreshing, then flush usage rows.
        let group = ServiceGroup(
            configuration: .init(
                services: [usage, refresher, server],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        logger.info(
            "worker serving",
            metadata: [
                "upstream": "\(configuration.upstreamBaseURL)",
                "strategy": "\(configuration.rotationStrategy.rawValue)",
            ])
        do {
            try await group.run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// The worker's routes: `/healthz` and every method under `/v1`.
    static func buildRouter(handler: ProxyHandler, index: Int) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(ErrorBodyMiddleware())
        router.get("/healthz") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\",\"worker\":\(index)}")))
        }
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("/v1", method: method) { request, _ in await handler.handle(request) }
            router.on("/v1/**", method: method) { request, _ in await handler.handle(request) }
        }
        return router
    }

    static func upstreamClientConfiguration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: .minutes(10))
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1024)
        // A refused connection answers 502 at once instead of retrying until the connect timeout; choosing
        // what to retry (and on which key) is the proxy's decision, not the connection pool's.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        return configuration
    }
}
