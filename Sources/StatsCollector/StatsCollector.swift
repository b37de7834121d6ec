import Logging
import ServiceLifecycle
import Shared

/// The stats collector role: receives usage rows from every worker and commits them in batches.
public enum StatsCollector {
    /// Runs the collector until SIGTERM, then commits what it holds and exits.
    public static func run(configuration: ProxyConfiguration, onServing: @escaping @Sendable () -> Void) async throws {
        let logger = Logger(label: "openai-proxy")
        // The database stays open (PostgreSQL's pool serving) until the group below has flushed the last batch.
        try await StoreSet.withOpened(configuration, migrate: false, logger: logger) { stores in
            try await run(configuration: configuration, stores: stores, logger: logger, onServing: onServing)
        }
    }

    /// Runs the collector over `stores` until SIGTERM.
    private static func run(
        configuration: ProxyConfiguration, stores: StoreSet, logger: Logger,
        onServing: @escaping @Sendable () -> Void
    ) async throws {
        let metrics = UsageMetrics()
        let store: any UsageStoring =
            switch stores.engine {
            case .sqlite(let database): UsageStore(database: database)
            case .postgresql(let database): PostgresUsageStore(database: database)
            }
        let writer = UsageBatchWriter(
            store: store, interval: configuration.usageBatchInterval, batchSize: configuration.usageBatchRows,
            metrics: metrics, logger: logger)
        let listener = UsageListener(
            socketPath: configuration.paths.statsSocket, writer: writer, metrics: metrics, logger: logger,
            onServing: onServing)
        let maintenance = LogMaintenance(
            store: store, checkpointed: stores.sqlite, objects: stores.objects,
            retentionDays: configuration.logRetentionDays, logger: logger,
            cluster: ClusterJobLock(stores: stores, key: ClusterJobLock.retentionKey, name: "log retention"))
        // Reverse order on shutdown: stop listening, then flush.
        let group = ServiceGroup(
            configuration: .init(
                services: [maintenance, writer, listener], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}
