import Prometheus
import Shared
import Synchronization

/// The collector's Prometheus metrics, fed by every committed batch: what every worker served (requests,
/// errors, latency and first-byte histograms, tokens by key and model) and how the collector keeps up
/// (batch size, commit latency, lag, rows waiting).
///
/// Counted from the rows the collector commits for the first time, so a row sent twice counts once here too.
/// Held in memory: the counters start again from zero when the collector restarts, as Prometheus expects.
final class UsageMetrics: Sendable {
    /// Where the metrics live; `exposition()` renders it.
    let registry: PrometheusCollectorRegistry
    /// At most this many distinct model names become label values; the rest are counted as `other`, so a
    /// client sending arbitrary model names cannot grow the metrics without bound.
    static let maximumModels = 200
    private let models = Mutex(Set<String>())
    private let durations: [Bool: DurationHistogram]
    private let firstBytes: [Bool: DurationHistogram]
    private let batchRows: ValueHistogram
    private let commitTime: DurationHistogram
    private let lag: Gauge
    private let pending: Gauge
    private let committed: Counter
    private let duplicates: Counter

    /// Metrics in `registry`.
    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let requestBuckets: [Duration] = [
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
            .seconds(60), .seconds(120), .seconds(300),
        ]
        func histogram(_ name: String, streamed: Bool, help: String) -> DurationHistogram {
            registry.makeDurationHistogram(
                descriptor: metric(name, help), labels: [("streamed", streamed ? "true" : "false")],
                buckets: requestBuckets)
        }
        var durations: [Bool: DurationHistogram] = [:]
        var firstBytes: [Bool: DurationHistogram] = [:]
        for streamed in [false, true] {
            durations[streamed] = histogram(
                "openai_proxy_request_duration_seconds", streamed: streamed,
                help: "Time from a request's arrival to the last byte of its answer.")
            firstBytes[streamed] = histogram(
                "openai_proxy_request_first_byte_seconds", streamed: streamed,
                help: "Time from a request's arrival to its answer's head.")
        }
        self.durations = durations
        self.firstBytes = firstBytes
        batchRows = registry.makeValueHistogram(
            descriptor: metric("openai_proxy_collector_batch_rows", "Rows per committed batch."),
            buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000])
        commitTime = registry.makeDurationHistogram(
            descriptor: metric(
                "openai_proxy_collector_commit_seconds",
                "Time to commit one batch (its transaction, waits for the write lock included)."),
            buckets: [
                .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                .seconds(1), .seconds(5),
            ])
        lag = registry.makeGauge(
            descriptor: metric(
                "openai_proxy_collector_lag_seconds",
                "In the last batch, the longest time from a request's end to the commit of its row."))
        pending = registry.makeGauge(
            descriptor: metric("openai_proxy_collector_pending_rows", "Rows received and not yet committed."))
        committed = registry.makeCounter(
            descriptor: metric("openai_proxy_collector_rows_committed_total", "Rows committed to the request log."))
        duplicates = registry.makeCounter(
            descriptor: metric(
                "openai_proxy_collector_duplicate_rows_total",
                "Rows received again (a resend after a reconnect or a spool replay) and counted once."))
    }

    /// Records one committed batch: `new` are the rows stored for the first time, `received` every row
    /// in the batch, `nowMs` the commit time in Unix milliseconds.
    func recordBatch(new: [UsageRow], received: Int, took: Duration, nowMs: Int64) {
        batchRows.record(Double(received))
        commitTime.record(took)
        committed.increment(by: Int64(new.count))
        duplicates.increment(by: Int64(received - new.count))
        struct Group: Hashable {
            var key: String
            var model: String
        }
        var requests: [Group: Int64] = [:]
        var prompt: [Group: Int64] = [:]
        var completion: [Group: Int64] = [:]
        var errors: [[String]: Int64] = [:]
        var longest: Int64 = 0
        for row in new {
            let group = Group(key: row.keyID.map(String.init) ?? "none", model: modelLabel(row.model))
            requests[group, default: 0] += 1
            if let tokens = row.promptTokens { prompt[group, default: 0] += Int64(tokens) }
            if let tokens = row.completionTokens { completion[group, default: 0] += Int64(tokens) }
            if row.failed {
                errors[[group.key, group.model, row.error ?? "http_\(row.status)"], default: 0] += 1
            }
            durations[row.streamed]?.record(.microseconds(Int64(row.latencyMs * 1000)))
            if let ttfb = row.ttfbMs { firstBytes[row.streamed]?.record(.microseconds(Int64(ttfb * 1000))) }
            longest = max(longest, nowMs - row.timestamp - Int64(row.latencyMs))
        }
        if !new.isEmpty { lag.set(Double(max(0, longest)) / 1000) }
        for (group, count) in requests {
            registry.makeCounter(
                descriptor: metric(
                    "openai_proxy_requests_total",
                    "Requests served, by upstream key id (none: no key was picked) and model."),
                labels: [("key", group.key), ("model", group.model)]
            ).increment(by: count)
        }
        for (labels, count) in errors {
            registry.makeCounter(
                descriptor: metric(
                    "openai_proxy_request_errors_total",
                    "Requests that failed, by key, model and reason (the proxy's error code, else http_<status>)."),
                labels: [("key", labels[0]), ("model", labels[1]), ("reason", labels[2])]
            ).increment(by: count)
        }
        for (kind, totals) in [("prompt", prompt), ("completion", completion)] {
            for (group, count) in totals {
                registry.makeCounter(
                    descriptor: metric(
                        "openai_proxy_tokens_total", "Tokens used, by key, model and kind (prompt or completion)."),
                    labels: [("key", group.key), ("model", group.model), ("kind", kind)]
                ).increment(by: count)
            }
        }
    }

    /// Counts requests refused before a token was known, by how much each reason's stored total grew.
    func recordRefused(_ grown: [RefusalReason: Int64]) {
        for (reason, count) in grown {
            registry.makeCounter(
                descriptor: metric(
                    "openai_proxy_refused_requests_total",
                    "Requests refused before a client token was known (counted, not logged one by one), by reason."),
                labels: [("reason", reason.rawValue)]
            ).increment(by: count)
        }
    }

    /// Publishes how many rows wait to be committed.
    func setPending(_ rows: Int) {
        pending.set(Double(rows))
    }

    /// The metrics in Prometheus text format.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }

    /// The label for a model name: the name (cut to 100 bytes), `none`, or `other` past the first
    /// `maximumModels` names.
    private func modelLabel(_ model: String?) -> String {
        guard let model, !model.isEmpty else { return "none" }
        let name = UsageWire.truncated(model, bytes: 100)
        return models.withLock { seen in
            if seen.contains(name) { return name }
            guard seen.count < Self.maximumModels else { return "other" }
            seen.insert(name)
            return name
        }
    }
}

/// A metric's name and help text, as swift-prometheus takes them.
private func metric(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}
