import GRDB
import Logging
import NIOCore
import ServiceLifecycle
import Shared

/// Re-validates keys in the background (in the admin process, one for the whole service): brings cooling
/// keys back when their time is up, probes quota_exhausted and invalid keys at their next-probe time,
/// and learns the models of keys whose models are unknown (a key just added).
public struct KeyProbeService: Service {
    /// Probes one key by id.
    public let runner: KeyProbeRunner
    /// Longest sleep between two looks at the database, so new keys are seen quickly.
    public var pollInterval: Duration = .seconds(1)
    /// How long after a failed models probe an active key is asked again.
    public var modelsRetry: Int64 = 60_000
    /// Probes running at once.
    public var concurrency = 8
    private let logger: Logger

    /// A service probing with `runner`.
    public init(runner: KeyProbeRunner, logger: Logger) {
        self.runner = runner
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                let wait = await tick()
                try await Task.sleep(for: wait)
            }
        }
    }

    /// Does everything due now; returns how long to wait for the next thing due.
    func tick() async -> Duration {
        let store = runner.health
        do {
            let now = WallClock.nowMs()
            try await store.releaseCooledKeys(now: now)
            let due = try await store.keysDueForProbe(now: now) + keysWithoutModels(now: now)
            await probeAll(due)
            guard let next = try await store.nextDueTime() else { return pollInterval }
            let wait = Duration.milliseconds(max(next - WallClock.nowMs(), 20))
            return min(wait, pollInterval)
        } catch {
            logger.warning("key probing failed: \(error)")
            return pollInterval
        }
    }

    private func keysWithoutModels(now: Int64) async throws -> [Int64] {
        try await runner.health.database.pool.read { db in
            try Int64.fetchAll(
                db,
                sql: """
                    SELECT id FROM keys WHERE status = 'active' AND models_checked_at IS NULL
                    AND COALESCE(last_probe_at, 0) <= ? ORDER BY id
                    """,
                arguments: [now - modelsRetry])
        }
    }

    private func probeAll(_ ids: [Int64]) async {
        var remaining = ids[...]
        while !remaining.isEmpty {
            let batch = remaining.prefix(concurrency)
            remaining = remaining.dropFirst(batch.count)
            await withTaskGroup(of: Void.self) { group in
                for id in batch {
                    group.addTask {
                        do {
                            _ = try await runner.probe(keyID: id)
                        } catch {
                            logger.warning("probe of key \(id) failed: \(error)")
                        }
                    }
                }
            }
        }
    }
}

/// Probes one stored key and records the result: what `keys test`, the admin API and the background
/// service share.
public struct KeyProbeRunner: Sendable {
    /// Where results go.
    public let health: KeyHealthStore
    /// Opens stored key values.
    public let box: SecretBox
    /// Makes the calls.
    public let prober: KeyProber

    /// A runner from its parts.
    public init(health: KeyHealthStore, box: SecretBox, prober: KeyProber) {
        self.health = health
        self.box = box
        self.prober = prober
    }

    /// A runner for `configuration`'s upstream and key health policy, over `database`; each call may take
    /// up to `timeout`.
    public init(
        configuration: ProxyConfiguration, database: ProxyDatabase, box: SecretBox, timeout: TimeAmount = .seconds(20)
    ) {
        self.init(
            health: KeyHealthStore(
                database: database, policy: configuration.keyHealth, logger: Logger(label: "openai-proxy")),
            box: box,
            prober: KeyProber(
                upstream: configuration.upstreamBaseURL, probeModel: configuration.probeModel, timeout: timeout))
    }

    /// What one probe found and did.
    public struct Report: Sendable {
        /// The probe's result.
        public let probe: KeyHealthStore.ProbeRecord
        /// The state before.
        public let before: KeyStatus
        /// The health written.
        public let applied: KeyHealthStore.Applied
    }

    /// Probes key `id` now; nil when no key has that id. A disabled key is probed but stays disabled.
    /// With `recordingUnanswered` false, a probe the upstream did not answer (unreachable, timeout)
    /// changes nothing: for a key added while the upstream may be out of reach.
    public func probe(keyID id: Int64, recordingUnanswered: Bool = true) async throws -> Report? {
        let stored = try await health.database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT key_value, status FROM keys WHERE id = ?", arguments: [id])
                .map { row -> (sealed: String, status: String) in (row["key_value"], row["status"]) }
        }
        guard let stored else { return nil }
        let status = KeyStatus(rawValue: stored.status) ?? .active
        let value = try box.open(stored.sealed)
        let probe = await prober.probe(value: value, status: status)
        if !recordingUnanswered, probe.status == 0 { return nil }
        guard let applied = try await health.recordProbe(probe, keyID: id) else { return nil }
        return Report(probe: probe, before: status, applied: applied)
    }
}
