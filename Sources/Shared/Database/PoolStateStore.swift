import GRDB

/// What a worker reads to route, on SQLite.
public struct PoolStateStore: PoolStateReading {
    /// The shared database.
    public let database: ProxyDatabase

    /// The state in `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    public func generation() async throws -> Int64 {
        try await database.pool.read { db in try Self.generation(db) }
    }

    public func state() async throws -> PoolState {
        try await database.pool.read { db in
            PoolState(
                generation: try Self.generation(db),
                keys: try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, key_hint, key_value, status, status_reason, status_code, status_since,
                        next_probe_at, consecutive_failures, cooling_level, marked_by_token, models
                        FROM keys WHERE status <> 'disabled' ORDER BY id
                        """
                ).map { row in
                    PoolStateKey(
                        id: row["id"], hint: row["key_hint"], sealed: row["key_value"],
                        health: KeyHealth(
                            status: KeyStatus(rawValue: row["status"]) ?? .active, reason: row["status_reason"],
                            statusCode: row["status_code"], since: row["status_since"] ?? 0,
                            nextProbeAt: row["next_probe_at"], consecutiveFailures: row["consecutive_failures"],
                            coolingLevel: row["cooling_level"], markedByToken: row["marked_by_token"]),
                        models: row["models"])
                },
                tokens: try ClientToken.filter(Column("status") == "active").fetchAll(db),
                enabledModels: try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM models)") == true
                    ? try ModelCatalog.enabledModels(db) : nil,
                settingsOverrides: try LiveSettings.overrides(db),
                disabledKeyIDs: try Int64.fetchAll(db, sql: "SELECT id FROM keys WHERE status = 'disabled' ORDER BY id")
            )
        }
    }

    public func tokensUsed() async throws -> [Int64: Int64] {
        try await database.pool.read { db in
            var figures: [Int64: Int64] = [:]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT id, prompt_tokens + completion_tokens AS used FROM client_tokens
                    WHERE status = 'active' AND token_quota IS NOT NULL
                    """)
            while let row = try rows.next() { figures[row["id"]] = row["used"] }
            return figures
        }
    }

    private static func generation(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT generation FROM pool_generation WHERE id = 1") ?? 0
    }
}
