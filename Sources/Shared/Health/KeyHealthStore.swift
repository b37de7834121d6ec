import Foundation
import GRDB
import Logging

/// Writes key health to the shared database: each change in one transaction with its `key_events` row
/// and one structured log line (the key masked), so every process sees the same state.
public struct KeyHealthStore: Sendable {
    /// The shared database.
    public let database: ProxyDatabase
    /// The state machine.
    public let policy: KeyHealthPolicy
    private let logger: Logger

    /// A store over `database`.
    public init(database: ProxyDatabase, policy: KeyHealthPolicy, logger: Logger) {
        self.database = database
        self.policy = policy
        self.logger = logger
    }

    /// What a write did: the key's health after it, the transition if any, and the pool generation after it.
    public struct Applied: Sendable {
        /// The health now stored.
        public let health: KeyHealth
        /// The change of state, if there was one.
        public let transition: KeyTransition?
        /// `pool_generation` after the write: a worker's snapshot at this generation or later shows it.
        public let generation: Int64
    }

    /// Applies what a request of client token `token` learned about key `id`; nil when the key no longer
    /// exists. A refusal marks nothing while another key that token's requests marked awaits its probe
    /// (checked in the writing transaction, so it holds across workers): the health stored is returned.
    @discardableResult
    public func record(
        _ outcome: KeyOutcome, keyID id: Int64, token: Int64? = nil, now: Int64 = WallClock.nowMs()
    ) async throws
        -> Applied?
    {
        let policy = policy
        return try await update(keyID: id, now: now) { db, health in
            if case .refused = outcome, let token {
                let marks = try Int64.fetchAll(
                    db, sql: "SELECT id FROM keys WHERE status = 'invalid' AND marked_by_token = ?", arguments: [token]
                ).map { (key: $0, token: token) }
                guard KeyHealthPolicy.refusalMayMark(keyID: id, token: token, marks: marks) else {
                    return (health, nil)
                }
            }
            return policy.apply(outcome, to: health, now: now, token: token)
        }
    }

    /// Brings every cooling key whose time is up back to active; returns how many.
    @discardableResult
    public func releaseCooledKeys(now: Int64 = WallClock.nowMs()) async throws -> Int {
        let due = try await database.pool.read { db in
            try Int64.fetchAll(
                db, sql: "SELECT id FROM keys WHERE status = 'cooling' AND COALESCE(next_probe_at, 0) <= ?",
                arguments: [now])
        }
        var released = 0
        for id in due {
            let applied = try await update(keyID: id, now: now) { _, health in policy.coolingElapsed(health, now: now) }
            if applied?.transition != nil { released += 1 }
        }
        return released
    }

    /// What a probe found about a key.
    public struct ProbeRecord: Sendable {
        /// Its outcome for the key's health.
        public let outcome: KeyOutcome
        /// HTTP status of the probe's last call (0: no answer).
        public let status: Int
        /// How long it took.
        public let latencyMs: Double
        /// Model ids reachable, when the models call succeeded.
        public let models: [String]?
        /// What went wrong, if anything.
        public let error: String?

        /// A probe record from its parts.
        public init(outcome: KeyOutcome, status: Int, latencyMs: Double, models: [String]?, error: String?) {
            self.outcome = outcome
            self.status = status
            self.latencyMs = latencyMs
            self.models = models
            self.error = error
        }
    }

    /// Stores a probe's result and moves the key accordingly; nil when the key no longer exists.
    @discardableResult
    public func recordProbe(
        _ probe: ProbeRecord, keyID id: Int64, now: Int64 = WallClock.nowMs()
    ) async throws
        -> Applied?
    {
        try await update(
            keyID: id, now: now,
            extra: { db in
                var sql = """
                    UPDATE keys SET last_probe_at = ?, last_probe_status = ?, last_probe_latency_ms = ?,
                    last_probe_error = ?
                    """
                var arguments: StatementArguments = [now, probe.status, probe.latencyMs, probe.error]
                if let models = probe.models {
                    sql += ", models = ?, models_checked_at = ?"
                    arguments += [Self.encodeModels(models), now]
                }
                sql += " WHERE id = ?"
                arguments += [id]
                try db.execute(sql: sql, arguments: arguments)
            }
        ) { _, health in policy.probed(probe.outcome, health: health, now: now) }
    }

    /// Keys whose probe is due at `now`: quota_exhausted and invalid keys past their next-probe time.
    public func keysDueForProbe(now: Int64 = WallClock.nowMs()) async throws -> [Int64] {
        try await database.pool.read { db in
            try Int64.fetchAll(
                db,
                sql: """
                    SELECT id FROM keys WHERE status IN ('quota_exhausted', 'invalid')
                    AND COALESCE(next_probe_at, 0) <= ? ORDER BY next_probe_at, id
                    """,
                arguments: [now])
        }
    }

    /// The earliest time something is due (a cooling key returns, a probe), if any.
    public func nextDueTime() async throws -> Int64? {
        try await database.pool.read { db in
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT MIN(COALESCE(next_probe_at, 0)) FROM keys
                    WHERE status IN ('cooling', 'quota_exhausted', 'invalid')
                    """)
        }
    }

    /// Stores the rate-limit figures workers saw, newest wins; a write that does not touch the generation.
    public func saveRateLimits(_ figures: [Int64: RateLimitState]) async throws {
        guard !figures.isEmpty else { return }
        try await database.pool.write { db in
            for (id, state) in figures {
                try db.execute(
                    sql: """
                        UPDATE keys SET rl_remaining_requests = ?, rl_remaining_tokens = ?, rl_reset_requests_at = ?,
                        rl_reset_tokens_at = ?, rl_updated_at = ?
                        WHERE id = ? AND COALESCE(rl_updated_at, 0) <= ?
                        """,
                    arguments: [
                        state.remainingRequests, state.remainingTokens, state.resetRequestsAt, state.resetTokensAt,
                        state.observedAt, id, state.observedAt,
                    ])
            }
        }
    }

    /// Reads, changes and writes one key's health in one transaction, with its event row and log line.
    private func update(
        keyID id: Int64, now: Int64, extra: (@Sendable (Database) throws -> Void)? = nil,
        _ change: @escaping @Sendable (Database, KeyHealth) throws -> (KeyHealth, KeyTransition?)
    ) async throws -> Applied? {
        let result = try await database.pool.write { db -> (Applied, String)? in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT key_hint, status, status_reason, status_code, status_since, next_probe_at,
                        consecutive_failures, cooling_level, marked_by_token FROM keys WHERE id = ?
                        """,
                    arguments: [id])
            else { return nil }
            let hint: String = row["key_hint"]
            let health = KeyHealth(
                status: KeyStatus(rawValue: row["status"]) ?? .active, reason: row["status_reason"],
                statusCode: row["status_code"], since: row["status_since"] ?? 0, nextProbeAt: row["next_probe_at"],
                consecutiveFailures: row["consecutive_failures"], coolingLevel: row["cooling_level"],
                markedByToken: row["marked_by_token"])
            let (next, transition) = try change(db, health)
            try extra?(db)
            if next != health {
                try db.execute(
                    sql: """
                        UPDATE keys SET status = ?, status_reason = ?, status_code = ?, status_since = ?,
                        next_probe_at = ?, consecutive_failures = ?, cooling_level = ?, marked_by_token = ? WHERE id = ?
                        """,
                    arguments: [
                        next.status, next.reason, next.statusCode, next.since, next.nextProbeAt,
                        next.consecutiveFailures, next.coolingLevel, next.markedByToken, id,
                    ])
            }
            if let transition {
                try db.execute(
                    sql: """
                        INSERT INTO key_events (ts, key_id, from_status, to_status, reason, status_code)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        now, id, transition.from.rawValue, transition.to.rawValue, transition.reason,
                        transition.statusCode,
                    ])
            }
            let generation = try Int64.fetchOne(db, sql: "SELECT generation FROM pool_generation WHERE id = 1") ?? 0
            return (Applied(health: next, transition: transition, generation: generation), hint)
        }
        guard let (applied, hint) = result else { return nil }
        Self.log(applied, keyID: id, hint: hint, logger)
        return applied
    }

    /// The one log line of a key's change of state (the key masked); every engine logs it the same.
    static func log(_ applied: Applied, keyID id: Int64, hint: String, _ logger: Logger) {
        guard let transition = applied.transition else { return }
        logger.notice(
            "key state changed",
            metadata: [
                "key.id": "\(id)", "key.hint": "\(hint)", "from": "\(transition.from.rawValue)",
                "to": "\(transition.to.rawValue)", "reason": "\(transition.reason)",
                "status_code": "\(transition.statusCode.map(String.init) ?? "-")",
                "next_probe_at": "\(applied.health.nextProbeAt.map(String.init) ?? "-")",
            ])
    }

    /// Model ids as stored in `keys.models`.
    static func encodeModels(_ models: [String]) -> String {
        // Encoding strings cannot fail.
        String(decoding: try! JSONEncoder().encode(Array(Set(models)).sorted()), as: UTF8.self)
    }
}

/// The rate-limit figures an upstream answer carried for a key.
public struct RateLimitState: Sendable, Equatable {
    /// `x-ratelimit-remaining-requests`.
    public var remainingRequests: Int64?
    /// `x-ratelimit-remaining-tokens`.
    public var remainingTokens: Int64?
    /// When the request budget resets (Unix ms), from `x-ratelimit-reset-requests`.
    public var resetRequestsAt: Int64?
    /// When the token budget resets (Unix ms), from `x-ratelimit-reset-tokens`.
    public var resetTokensAt: Int64?
    /// When the answer was seen (Unix ms).
    public var observedAt: Int64

    /// Figures from their parts.
    public init(
        remainingRequests: Int64?, remainingTokens: Int64?, resetRequestsAt: Int64?, resetTokensAt: Int64?,
        observedAt: Int64
    ) {
        self.remainingRequests = remainingRequests
        self.remainingTokens = remainingTokens
        self.resetRequestsAt = resetRequestsAt
        self.resetTokensAt = resetTokensAt
        self.observedAt = observedAt
    }

    /// How long stale figures without a reset time are trusted.
    static let unknownResetHorizonMs: Int64 = 60_000

    /// Whether the key has budget left at `now`: no figure says zero before its reset.
    public func hasHeadroom(now: Int64) -> Bool {
        !Self.spent(remainingRequests, resetRequestsAt, observedAt, now)
            && !Self.spent(remainingTokens, resetTokensAt, observedAt, now)
    }

    private static func spent(_ remaining: Int64?, _ resetAt: Int64?, _ observedAt: Int64, _ now: Int64) -> Bool {
        guard let remaining, remaining <= 0 else { return false }
        return now < (resetAt ?? observedAt + unknownResetHorizonMs)
    }
}

extension KeyHealthStore {
    /// Rate-limit figures stored since `since` (Unix ms), by key id.
    public func rateLimits(since: Int64) async throws -> [Int64: RateLimitState] {
        try await database.pool.read { db in
            var figures: [Int64: RateLimitState] = [:]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT id, rl_remaining_requests, rl_remaining_tokens, rl_reset_requests_at, rl_reset_tokens_at,
                    rl_updated_at FROM keys WHERE rl_updated_at > ?
                    """,
                arguments: [since])
            while let row = try rows.next() {
                figures[row["id"]] = RateLimitState(
                    remainingRequests: row["rl_remaining_requests"], remainingTokens: row["rl_remaining_tokens"],
                    resetRequestsAt: row["rl_reset_requests_at"], resetTokensAt: row["rl_reset_tokens_at"],
                    observedAt: row["rl_updated_at"])
            }
            return figures
        }
    }
}
