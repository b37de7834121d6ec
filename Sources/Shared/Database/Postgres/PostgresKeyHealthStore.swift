import Foundation
import Logging
import PostgresNIO

/// Key health on PostgreSQL; behaves as `KeyHealthStore` does on SQLite. SQLite serialises every write
/// transaction; here the key's row is locked, and a refusal's check of the token's marks holds a
/// transaction lock on the token, so that one token still never holds two marks across workers and hosts.
public struct PostgresKeyHealthStore: KeyHealthStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase
    /// The state machine.
    public let policy: KeyHealthPolicy
    private let logger: Logger

    /// A store over `database`.
    public init(database: PostgresProxyDatabase, policy: KeyHealthPolicy, logger: Logger) {
        self.database = database
        self.policy = policy
        self.logger = logger
    }

    /// The `pg_advisory_xact_lock` namespace of a token's marks ("op-mark" in ASCII, shifted), xor the token id.
    static let markLockNamespace: Int64 = 0x6f70_2d6d_6172_6b00

    @discardableResult
    public func record(
        _ outcome: KeyOutcome, keyID id: Int64, token: Int64? = nil, now: Int64 = WallClock.nowMs()
    ) async throws -> KeyHealthStore.Applied? {
        let policy = policy
        return try await update(keyID: id, now: now) { connection, health in
            if case .refused = outcome, let token {
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(Self.markLockNamespace ^ token))", logger: database.logger)
                let rows = try await connection.query(
                    "SELECT id FROM keys WHERE status = 'invalid' AND marked_by_token = \(token)",
                    logger: database.logger)
                var marks: [(key: Int64, token: Int64)] = []
                for try await key in rows.decode(Int64.self) { marks.append((key, token)) }
                guard KeyHealthPolicy.refusalMayMark(keyID: id, token: token, marks: marks) else {
                    return (health, nil)
                }
            }
            return policy.apply(outcome, to: health, now: now, token: token)
        }
    }

    @discardableResult
    public func releaseCooledKeys(now: Int64 = WallClock.nowMs()) async throws -> Int {
        let due = try await ids(
            "SELECT id FROM keys WHERE status = 'cooling' AND COALESCE(next_probe_at, 0) <= \(now) ORDER BY id")
        var released = 0
        for id in due {
            let applied = try await update(keyID: id, now: now) { _, health in policy.coolingElapsed(health, now: now) }
            if applied?.transition != nil { released += 1 }
        }
        return released
    }

    @discardableResult
    public func recordProbe(
        _ probe: KeyHealthStore.ProbeRecord, keyID id: Int64, now: Int64 = WallClock.nowMs()
    ) async throws -> KeyHealthStore.Applied? {
        try await update(
            keyID: id, now: now,
            extra: { connection in
                if let models = probe.models {
                    try await connection.query(
                        """
                        UPDATE keys SET last_probe_at = \(now), last_probe_status = \(probe.status),
                            last_probe_latency_ms = \(probe.latencyMs), last_probe_error = \(probe.error),
                            models = \(KeyHealthStore.encodeModels(models)), models_checked_at = \(now)
                        WHERE id = \(id)
                        """, logger: database.logger)
                } else {
                    try await connection.query(
                        """
                        UPDATE keys SET last_probe_at = \(now), last_probe_status = \(probe.status),
                            last_probe_latency_ms = \(probe.latencyMs), last_probe_error = \(probe.error)
                        WHERE id = \(id)
                        """, logger: database.logger)
                }
            }
        ) { _, health in policy.probed(probe.outcome, health: health, now: now) }
    }

    public func keysDueForProbe(now: Int64 = WallClock.nowMs()) async throws -> [Int64] {
        try await ids(
            """
            SELECT id FROM keys WHERE status IN ('quota_exhausted', 'invalid')
            AND COALESCE(next_probe_at, 0) <= \(now) ORDER BY next_probe_at NULLS FIRST, id
            """)
    }

    public func nextDueTime() async throws -> Int64? {
        try await database.connection { connection in
            let rows = try await connection.query(
                """
                SELECT MIN(COALESCE(next_probe_at, 0)) FROM keys
                WHERE status IN ('cooling', 'quota_exhausted', 'invalid')
                """, logger: database.logger)
            for try await time in rows.decode(Int64?.self) { return time }
            return nil
        }
    }

    public func saveRateLimits(_ figures: [Int64: RateLimitState]) async throws {
        guard !figures.isEmpty else { return }
        try await database.transaction { connection in
            for (id, state) in figures {
                try await connection.query(
                    """
                    UPDATE keys SET rl_remaining_requests = \(state.remainingRequests),
                        rl_remaining_tokens = \(state.remainingTokens), rl_reset_requests_at = \(state.resetRequestsAt),
                        rl_reset_tokens_at = \(state.resetTokensAt), rl_updated_at = \(state.observedAt)
                    WHERE id = \(id) AND COALESCE(rl_updated_at, 0) <= \(state.observedAt)
                    """, logger: database.logger)
            }
        }
    }

    public func rateLimits(since: Int64) async throws -> [Int64: RateLimitState] {
        try await database.connection { connection in
            let rows = try await connection.query(
                """
                SELECT id, rl_remaining_requests, rl_remaining_tokens, rl_reset_requests_at, rl_reset_tokens_at,
                rl_updated_at FROM keys WHERE rl_updated_at > \(since)
                """, logger: database.logger)
            var figures: [Int64: RateLimitState] = [:]
            for try await (id, requests, tokens, requestsAt, tokensAt, observedAt) in rows.decode(
                (Int64, Int64?, Int64?, Int64?, Int64?, Int64).self)
            {
                figures[id] = RateLimitState(
                    remainingRequests: requests, remainingTokens: tokens, resetRequestsAt: requestsAt,
                    resetTokensAt: tokensAt, observedAt: observedAt)
            }
            return figures
        }
    }

    func ids(_ query: PostgresQuery) async throws -> [Int64] {
        try await database.connection { connection in
            let rows = try await connection.query(query, logger: database.logger)
            var ids: [Int64] = []
            for try await id in rows.decode(Int64.self) { ids.append(id) }
            return ids
        }
    }

    /// Reads (locking the row), changes and writes one key's health in one transaction, with its event row
    /// and log line.
    private func update(
        keyID id: Int64, now: Int64, extra: (@Sendable (PostgresConnection) async throws -> Void)? = nil,
        _ change: @escaping @Sendable (PostgresConnection, KeyHealth) async throws -> (KeyHealth, KeyTransition?)
    ) async throws -> KeyHealthStore.Applied? {
        let logger = database.logger
        let result = try await database.transaction { connection -> (KeyHealthStore.Applied, String)? in
            let rows = try await connection.query(
                """
                SELECT key_hint, status, status_reason, status_code, status_since, next_probe_at,
                consecutive_failures, cooling_level, marked_by_token FROM keys WHERE id = \(id) FOR UPDATE
                """, logger: logger)
            var found: (String, KeyHealth)?
            for try await (hint, status, reason, code, since, next, failures, level, mark) in rows.decode(
                (String, String, String?, Int?, Int64?, Int64?, Int, Int, Int64?).self)
            {
                found = (
                    hint,
                    KeyHealth(
                        status: KeyStatus(rawValue: status) ?? .active, reason: reason, statusCode: code,
                        since: since ?? 0, nextProbeAt: next, consecutiveFailures: failures, coolingLevel: level,
                        markedByToken: mark)
                )
            }
            guard let (hint, health) = found else { return nil }
            let (next, transition) = try await change(connection, health)
            try await extra?(connection)
            if next != health {
                try await connection.query(
                    """
                    UPDATE keys SET status = \(next.status.rawValue), status_reason = \(next.reason),
                        status_code = \(next.statusCode), status_since = \(next.since),
                        next_probe_at = \(next.nextProbeAt), consecutive_failures = \(next.consecutiveFailures),
                        cooling_level = \(next.coolingLevel), marked_by_token = \(next.markedByToken)
                    WHERE id = \(id)
                    """, logger: logger)
            }
            if let transition {
                try await connection.query(
                    """
                    INSERT INTO key_events (ts, key_id, from_status, to_status, reason, status_code)
                    VALUES (\(now), \(id), \(transition.from.rawValue), \(transition.to.rawValue),
                        \(transition.reason), \(transition.statusCode))
                    """, logger: logger)
            }
            var generation: Int64 = 0
            let generations = try await connection.query(
                "SELECT generation FROM pool_generation WHERE id = 1", logger: logger)
            for try await value in generations.decode(Int64.self) { generation = value }
            return (KeyHealthStore.Applied(health: next, transition: transition, generation: generation), hint)
        }
        guard let (applied, hint) = result else { return nil }
        KeyHealthStore.log(applied, keyID: id, hint: hint, self.logger)
        return applied
    }
}
