import Logging
import ServiceLifecycle
import Shared

/// The stats collector role: receives usage rows from every worker and commits them in batches.
public enum StatsCollector {
    /// Runs the collector until SIGTERM, then commits what it holds and exits.
    public static func run(configuration: ProxyConfiguration, onServing: @escaping @Sendable () -> Void) async throws {
        let logger = Logger(label: "openai-proxy")
        let database = try ProxyDatabase.open(at: configuration.paths.database, migrate: false)
        let metrics = UsageMetrics()
        let store = UsageStore(database: database)
        let writer = UsageBatchWriter(
            store: store, interval: configuration.usageBatchInterval, batchSize: configuration.usageBatchRows,
            metrics: metrics, logger: logger)
        let listener = UsageListener(
            socketPath: configuration.paths.statsSocket, writer: writer, metrics: metrics, logger: logger,
            onServing: onServing)
        let maintenance = LogMaintenance(
            store: store, checkpointed: database, objects: ObjectStore(database: database),
            retentionDays: configuration.logRetentionDays, logger: logger)
        // Reverse order on shutdown: stop listening, then flush.
        let group = ServiceGroup(
            configuration: .init(
                services: [maintenance, writer, listener], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}
