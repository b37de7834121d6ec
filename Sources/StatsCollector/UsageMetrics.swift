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
    private let duration: DurationHistogram
    private let streamedDuration: DurationHistogram
    private let firstByte: DurationHistogram
    private let streamedFirstByte: DurationHistogram
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
        let durationHelp = "Time from a request's arrival to the last byte of its answer."
        let firstByteHelp = "Time from a request's arrival to its answer's head."
        duration = histogram("openai_proxy_request_duration_seconds", streamed: false, help: durationHelp)
        streamedDuration = histogram("openai_proxy_request_duration_seconds", streamed: true, help: durationHelp)
        firstByte = histogram("openai_proxy_request_first_byte_seconds", streamed: false, help: firstByteHelp)
        streamedFirstByte = histogram("openai_proxy_request_first_byte_seconds", streamed: true, help: firstByteHelp)
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
        // Rows are summed per key and model first; label texts and counters are then made once per group,
        // not per row (a label's model name takes a lock: it is checked against the names seen).
        var groups: [Group: Sums] = [:]
        var longest: Int64 = 0
        for row in new {
            groups[Group(keyID: row.keyID, model: row.model), default: Sums()].add(row)
            if row.streamed {
                streamedDuration.record(.microseconds(Int64(row.latencyMs * 1000)))
                if let ttfb = row.ttfbMs { streamedFirstByte.record(.microseconds(Int64(ttfb * 1000))) }
            } else {
                duration.record(.microseconds(Int64(row.latencyMs * 1000)))
                if let ttfb = row.ttfbMs { firstByte.record(.microseconds(Int64(ttfb * 1000))) }
            }
            longest = max(longest, nowMs - row.timestamp - Int64(row.latencyMs))
        }
        if !new.isEmpty { lag.set(Double(max(0, longest)) / 1000) }
        for (group, sums) in groups {
            let key = group.keyID.map(String.init) ?? "none"
            let model = modelLabel(group.model)
            registry.makeCounter(
                descriptor: metric(
                    "openai_proxy_requests_total",
                    "Requests served, by upstream key id (none: no key was picked) and model."),
                labels: [("key", key), ("model", model)]
            ).increment(by: sums.requests)
            for (reason, count) in sums.errors {
                registry.makeCounter(
                    descriptor: metric(
                        "openai_proxy_request_errors_total",
                        "Requests that failed, by key, model and reason (the proxy's error code, else http_<status>)."),
                    labels: [("key", key), ("model", model), ("reason", reason)]
                ).increment(by: count)
            }
            let kinds = [
                ("prompt", sums.prompt), ("completion", sums.completion), ("cached", sums.cached),
                ("reasoning", sums.reasoning), ("audio_input", sums.audioInput), ("audio_output", sums.audioOutput),
            ]
            for (kind, count) in kinds where count.present {
                registry.makeCounter(
                    descriptor: metric(
                        "openai_proxy_tokens_total",
                        "Tokens used, by key, model and kind (prompt, completion; and of those, as the answers "
                            + "reported them: cached, reasoning, audio_input, audio_output)."),
                    labels: [("key", key), ("model", model), ("kind", kind)]
                ).increment(by: count.tokens)
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

/// The rows of one batch with the same key and model.
private struct Group: Hashable {
    var keyID: Int64?
    var model: String?
}

/// What the rows of one group add to the counters.
private struct Sums {
    /// A token count, and whether any row reported one (a counter is made only then).
    struct Tokens {
        var tokens: Int64 = 0
        var present = false

        mutating func add(_ value: Int?) {
            guard let value else { return }
            tokens += Int64(value)
            present = true
        }
    }

    var requests: Int64 = 0
    var prompt = Tokens()
    var completion = Tokens()
    var cached = Tokens()
    var reasoning = Tokens()
    var audioInput = Tokens()
    var audioOutput = Tokens()
    /// Failed requests by reason: the proxy's error code, else `http_<status>`.
    var errors: [String: Int64] = [:]

    mutating func add(_ row: UsageRow) {
        requests += 1
        prompt.add(row.promptTokens)
        completion.add(row.completionTokens)
        cached.add(row.cachedTokens)
        reasoning.add(row.reasoningTokens)
        audioInput.add(row.audioInputTokens)
        audioOutput.add(row.audioOutputTokens)
        if row.failed { errors[row.error ?? "http_\(row.status)", default: 0] += 1 }
    }
}

/// A metric's name and help text, as swift-prometheus takes them.
private func metric(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}
