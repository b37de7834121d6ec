import Logging
import NIOCore
import ServiceLifecycle
import Shared

/// Re-validates keys in the background (in the admin process, one for the whole service; on PostgreSQL one for
/// the whole cluster): brings cooling keys back when their time is up, probes quota_exhausted and invalid keys at
/// their next-probe time, and learns the models of keys whose models are unknown (a key just added).
public struct KeyProbeService: Service {
    /// Probes one key by id.
    public let runner: KeyProbeRunner
    /// Longest sleep between two looks at the database, so new keys are seen quickly.
    public var pollInterval: Duration = .seconds(1)
    /// How long after a failed models probe an active key is asked again.
    public var modelsRetry: Int64 = 60_000
    /// Probes running at once.
    public var concurrency = 8
    /// On PostgreSQL, the lock whose holder alone probes, so one prober serves the whole cluster (nil: probe here).
    public var cluster: ClusterJobLock?
    private let logger: Logger

    /// A service probing with `runner`.
    public init(runner: KeyProbeRunner, logger: Logger) {
        self.runner = runner
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            guard let cluster else { return try await probeEvery() }
            try await cluster.whileHeld(logger: logger) { try await probeEvery() }
        }
    }

    /// Does what is due, again and again, until cancelled.
    private func probeEvery() async throws {
        while true {
            let wait = await tick()
            try await Task.sleep(for: wait)
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
            logger.warning("key probing failed: \(PostgresErrorText.line(error))")
            return pollInterval
        }
    }

    private func keysWithoutModels(now: Int64) async throws -> [Int64] {
        try await runner.health.keysWithoutModels(probedBefore: now - modelsRetry)
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
                            logger.warning("probe of key \(id) failed: \(PostgresErrorText.line(error))")
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
    /// Where results go, on either engine.
    public let health: any KeyHealthStoring
    /// Opens stored key values.
    public let box: SecretBox
    /// Makes the calls.
    public let prober: KeyProber

    /// A runner from its parts.
    public init(health: any KeyHealthStoring, box: SecretBox, prober: KeyProber) {
        self.health = health
        self.box = box
        self.prober = prober
    }

    /// A runner for `configuration`'s upstream and key health policy, over `stores`; each call may take up to
    /// `timeout`.
    public init(
        configuration: ProxyConfiguration, stores: StoreSet, box: SecretBox, timeout: TimeAmount = .seconds(20)
    ) {
        self.init(
            health: stores.keyHealth(policy: configuration.keyHealth, logger: Logger(label: "openai-proxy")),
            box: box,
            prober: KeyProber(
                upstream: configuration.upstreamBaseURL, probeModel: configuration.probeModel, timeout: timeout))
    }

    /// A runner over the SQLite `database` (see `init(configuration:stores:box:timeout:)`).
    public init(
        configuration: ProxyConfiguration, database: ProxyDatabase, box: SecretBox, timeout: TimeAmount = .seconds(20)
    ) {
        self.init(configuration: configuration, stores: StoreSet(sqlite: database), box: box, timeout: timeout)
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
        guard let stored = try await health.probeTarget(keyID: id) else { return nil }
        let status = stored.status
        let value = try box.open(stored.sealed)
        let probe = await prober.probe(value: value, status: status)
        if !recordingUnanswered, probe.status == 0 { return nil }
        guard let applied = try await health.recordProbe(probe, keyID: id, now: WallClock.nowMs()) else { return nil }
        return Report(probe: probe, before: status, applied: applied)
    }
}
