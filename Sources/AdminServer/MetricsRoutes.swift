import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import Prometheus
import Shared

/// `GET /metrics`: Prometheus text covering the whole service, behind the admin bearer token unless
/// `OPENAI_PROXY_METRICS_PUBLIC=true` (it shows key ids and counts, never a key, a token or a text).
/// Model and key label values are bounded to what the service knows (`MetricsLabelBounds`).
///
/// What every worker served, and how the collector keeps up, comes from the stats collector, which sees
/// every usage row (asked over the stats socket at each scrape). The key states, the spool and the dropped
/// rows are read here at each scrape: from the database, the spool directory, and the board the workers
/// count drops on, so they are right even while the collector is down.
struct MetricsRoutes: Sendable {
    /// Where the key states and the known model names are read.
    let reading: any MetricsReading
    let paths: DataPaths
    /// Whose admin token a scrape must carry; nil when `/metrics` is public.
    let guardedBy: AdminServices?
    /// Every state a key can be in.
    static let keyStates = ["active", "cooling", "quota_exhausted", "invalid", "disabled"]

    /// On PostgreSQL, the database's reach: in an outage a scrape leaves the key figures out instead of waiting.
    let reachability: DatabaseReachability?

    /// The routes over `services`: its readers, and the data directory's spool, drop board and stats socket.
    init(services: AdminServices) {
        reading = services.reading
        reachability = services.databaseProbe?.reachability
        paths = services.configuration.paths
        guardedBy = services.configuration.metricsPublic ? nil : services
    }

    /// Adds `GET /metrics` to `router`.
    func register(on router: Router<AdminRequestContext>) {
        router.get("/metrics") { request, context in
            if let services = guardedBy { try Self.authorize(request, context: context, services: services) }
            var body = ByteBuffer()
            body.writeBytes(await self.render())
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: body))
        }
    }

    /// Lets a scrape with `Authorization: Bearer <admin token>` through; wrong tokens count as failed logins.
    static func authorize(_ request: Request, context: AdminRequestContext, services: AdminServices) throws {
        guard let header = request.headers[.authorization] else {
            throw AdminAuthMiddleware.unauthorized(
                "GET /metrics needs 'Authorization: Bearer <admin token>' (or OPENAI_PROXY_METRICS_PUBLIC=true).",
                code: "invalid_admin_token")
        }
        let prefix = "Bearer "
        guard header.hasPrefix(prefix),
            SecretDigest.constantTimeEquals(String(header.dropFirst(prefix.count)), services.adminToken)
        else { throw AdminAuthMiddleware.refuse(client: context.client, now: services.now(), services: services) }
    }

    /// The model names and key ids whose label values are kept; nil when the database cannot be read.
    func labelBounds() async -> MetricsLabelBounds? {
        (try? await reading.metricsFigures()).map(Self.labelBounds)
    }

    /// The model names and key ids of `figures`, as label bounds.
    static func labelBounds(_ figures: MetricsFigures) -> MetricsLabelBounds {
        MetricsLabelBounds(models: figures.models, keys: figures.keyStatuses.keys.map(String.init))
    }

    /// The key states and model names from the database, or nil when they cannot be read (or in an outage).
    private func keyFigures() async -> MetricsFigures? {
        guard let reachability else { return try? await reading.metricsFigures() }
        let reading = self.reading
        return try? await reachability.unlessOutage { try await reading.metricsFigures() }?.get()
    }

    /// The whole exposition: the collector's metrics, then this process's.
    func render() async -> [UInt8] {
        let figures = await keyFigures()
        let bounds = figures.map(Self.labelBounds) ?? MetricsLabelBounds(models: [], keys: [])
        let collector = (try? await Self.fetchCollectorMetrics(socketPath: paths.statsSocket)).map(bounds.bound)
        let registry = PrometheusCollectorRegistry()
        registry.makeGauge(
            descriptor: metric("openai_proxy_collector_up", "1 when the stats collector answered this scrape, else 0.")
        ).set(collector == nil ? 0.0 : 1.0)
        if let keys = figures?.keyStatuses.sorted(by: { $0.key < $1.key }) {
            var counts = Dictionary(uniqueKeysWithValues: Self.keyStates.map { ($0, 0) })
            for (id, status) in keys {
                counts[status, default: 0] += 1
                for state in Set(Self.keyStates + [status]).sorted() {
                    registry.makeGauge(
                        descriptor: metric(
                            "openai_proxy_key_status",
                            "1 for the state an upstream key is in, 0 for the others (by key id)."),
                        labels: [("key", String(id)), ("status", state)]
                    ).set(state == status ? 1.0 : 0.0)
                }
            }
            for (state, count) in counts {
                registry.makeGauge(
                    descriptor: metric("openai_proxy_keys", "Upstream keys in each state."), labels: [("status", state)]
                ).set(Double(count))
            }
        }
        let spool = UsageSpool.usage(of: paths.spool)
        registry.makeGauge(
            descriptor: metric(
                "openai_proxy_usage_spool_bytes", "Bytes of usage rows waiting in the spool for the collector.")
        ).set(Double(spool.bytes))
        registry.makeGauge(descriptor: metric("openai_proxy_usage_spool_files", "Spool files on disk.")).set(
            Double(spool.segments))
        if let drops = try? UsageDropBoard(path: paths.usageDrops) {
            registry.makeCounter(
                descriptor: metric(
                    "openai_proxy_usage_rows_dropped_total",
                    "Usage rows the workers dropped because the spool was at its cap or could not be written.")
            ).increment(by: Int64(clamping: drops.total))
        }
        return (collector ?? []) + registry.emitToBuffer()
    }

    /// The collector's metrics text, asked for over the stats socket; throws when it does not answer in time.
    static func fetchCollectorMetrics(socketPath: String, timeout: Duration = .seconds(2)) async throws -> [UInt8] {
        try await withThrowingTaskGroup(of: [UInt8].self) { group in
            group.addTask {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(1))
                    .connect(unixDomainSocketPath: socketPath) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                        }
                    }
                return try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: UsageWire.metricsRequest + "\n"))
                    var text: [UInt8] = []
                    for try await chunk in inbound { text += chunk.readableBytesView }
                    return text
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw CancellationError()
            }
            defer { group.cancelAll() }
            return try await group.next() ?? []
        }
    }
}

/// A metric's name and help text, as swift-prometheus takes them.
private func metric(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}
