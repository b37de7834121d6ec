import HTTPServing
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
        // The database stays open (PostgreSQL's pool serving) until the service group below has drained.
        try await StoreSet.withOpened(configuration, migrate: false, logger: logger) { stores in
            try await run(
                configuration: configuration, index: index, listener: listener, stores: stores,
                logger: logger, onServing: onServing)
        }
    }

    /// Runs a worker over `stores` until SIGTERM.
    private static func run(
        configuration: ProxyConfiguration, index: Int, listener: Int32, stores: StoreSet, logger: Logger,
        onServing: @escaping @Sendable () -> Void
    ) async throws {
        let box = try SecretMaterial.box(for: configuration, create: false)
        let reachability = stores.reachability(logger: logger)
        let lease = PositionLease(cursor: stores.rotationCursor, reachability: reachability)
        let store = SnapshotStore(
            defaults: RequestSettings(
                maxBodyBytes: configuration.maxBodyBytes, firstByteTimeout: TimeAmount(configuration.firstByteTimeout),
                connectTimeout: nil,
                selector: KeySelector(
                    strategy: configuration.rotationStrategy, lease: lease, leastUsed: stores.leastUsedPicks),
                maxAttempts: configuration.maxAttempts))
        let health = KeyHealthBoard(
            store: stores.keyHealth(policy: configuration.keyHealth, logger: logger), logger: logger)
        let objects = ObjectDirectory(store: stores.objects)
        let refresher = SnapshotRefresher(
            source: stores.poolState, objectStore: stores.objects, box: box, store: store, board: health,
            configuration: configuration, objects: objects, interval: .milliseconds(250), logger: logger,
            changes: stores.changeListener, reachability: reachability)
        try await refresher.loadInitial()

        let usage = UsageSender(
            socketPath: configuration.paths.statsSocket, spoolDirectory: configuration.paths.spool,
            spoolCapacity: configuration.spoolMaxBytes / configuration.workers, worker: index,
            drops: try UsageDropBoard(path: configuration.paths.usageDrops), logger: logger)
        // Named per process start, so the counts of a restarted worker are never taken for its predecessor's.
        let refused = RefusedRequests(
            source: "w\(index)-\(String(UInt64.random(in: .min ... .max), radix: 36))",
            usage: configuration.usageEnabled ? usage : nil, logger: logger)
        let core = WorkerContext(
            worker: index, upstream: configuration.upstreamBaseURL, snapshots: store, health: health, usage: usage,
            rateWindows: stores.rateWindows,
            pools: try await UpstreamPools(
                group: MultiThreadedEventLoopGroup.singleton, target: try UpstreamTarget(configuration.upstreamBaseURL),
                connectTimeout: TimeAmount(configuration.connectTimeout),
                readTimeout: TimeAmount(configuration.streamIdleTimeout)),
            logger: logger, recording: UsageRecording(configuration), refused: refused,
            // Without usage rows nothing counts what a token used, and nothing would drop a reservation.
            quotaReservations: configuration.usageEnabled ? stores.quotaReservations : nil,
            objects: objects, objectRetentionDays: configuration.objectRetentionDays, reachability: reachability)
        let board = try WorkerLoadBoard(path: configuration.paths.workerLoad, slots: configuration.workers)
        var server = ProxyServer(descriptor: listener, core: core, board: board, onServing: onServing)
        // Done before the supervisor's deadline, with time left to send the last usage rows.
        server.drainLimit = max(
            configuration.workerDrainBudget - .milliseconds(500), configuration.workerDrainBudget * 0.75)
        server.clientLimits = ClientLimits(
            headerTimeout: TimeAmount(configuration.clientHeaderTimeout),
            bodyTimeout: TimeAmount(configuration.clientBodyTimeout),
            bodyBudget: BodyBudget(limit: configuration.bufferedBodyBytes),
            webSocketIdleTimeout: TimeAmount(configuration.webSocketIdleTimeout))
        let openFiles = ConnectionCap.openFileLimit()
        server.maxConnections = configuration.workerConnections ?? ConnectionCap.defaultLimit(openFileLimit: openFiles)

        // Shut down in reverse: stop accepting and drain first, then stop refreshing and leasing ahead, then
        // write the last key-health changes, then send the last refused counts, then flush usage rows.
        let group = ServiceGroup(
            configuration: .init(
                services: [usage, refused, health, PositionPrefetcher(lease: lease), refresher, server],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        logger.info(
            "worker serving",
            metadata: [
                "upstream": "\(configuration.upstreamBaseURL)",
                "strategy": "\(configuration.rotationStrategy.rawValue)",
                "connections.cap": "\(server.maxConnections)", "open_files.limit": "\(openFiles)",
            ])
        try await group.run()
    }
}
