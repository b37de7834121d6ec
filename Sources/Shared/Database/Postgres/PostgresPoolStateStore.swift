import PostgresNIO

/// What a worker reads to route, on PostgreSQL; behaves as `PoolStateStore` does on SQLite.
public struct PostgresPoolStateStore: PoolStateReading {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// The state in `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func generation() async throws -> Int64 {
        try await database.connection { connection in try await Self.generation(connection, database) }
    }

    public func state() async throws -> PoolState {
        try await database.transaction { connection in
            let logger = database.logger
            // One snapshot for every statement, as SQLite's read transaction gives (READ COMMITTED takes one each).
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            let generation = try await Self.generation(connection, database)
            var keys: [PoolStateKey] = []
            let keyRows = try await connection.query(
                """
                SELECT id, key_hint, key_value, status, status_reason, status_code, status_since, next_probe_at,
                    consecutive_failures, cooling_level, marked_by_token, models
                FROM keys WHERE status <> 'disabled' ORDER BY id
                """, logger: logger)
            for try await row in keyRows { keys.append(try Self.key(row.makeRandomAccess())) }
            let tokens = try await PostgresTokenStore.tokens(
                connection.query(
                    "SELECT \(unescaped: PostgresTokenStore.columns) FROM client_tokens WHERE status = 'active' ORDER BY id",
                    logger: logger))
            var anyModel = false
            for try await exists in try await connection.query(
                "SELECT EXISTS (SELECT 1 FROM models)", logger: logger
            ).decode(Bool.self) {
                anyModel = exists
            }
            let models =
                anyModel
                ? try await PostgresModelStore.entries(
                    connection.query(
                        "SELECT \(unescaped: PostgresModelStore.columns) FROM models WHERE enabled ORDER BY model_name",
                        logger: logger)) : nil
            var overrides: [String: String] = [:]
            for try await (name, value) in try await connection.query(
                "SELECT name, value FROM settings", logger: logger
            ).decode((String, String).self) {
                overrides[name] = value
            }
            var disabled: [Int64] = []
            for try await id in try await connection.query(
                "SELECT id FROM keys WHERE status = 'disabled' ORDER BY id", logger: logger
            ).decode(Int64.self) {
                disabled.append(id)
            }
            return PoolState(
                generation: generation, keys: keys, tokens: tokens, enabledModels: models, settingsOverrides: overrides,
                disabledKeyIDs: disabled)
        }
    }

    public func tokensUsed() async throws -> [Int64: Int64] {
        try await database.connection { connection in
            var figures: [Int64: Int64] = [:]
            let rows = try await connection.query(
                """
                SELECT id, prompt_tokens + completion_tokens FROM client_tokens
                WHERE status = 'active' AND token_quota IS NOT NULL
                """, logger: database.logger)
            for try await (id, used) in rows.decode((Int64, Int64).self) { figures[id] = used }
            return figures
        }
    }

    private static func generation(
        _ connection: PostgresConnection, _ database: PostgresProxyDatabase
    ) async throws
        -> Int64
    {
        var generation: Int64 = 0
        let rows = try await connection.query(
            "SELECT generation FROM pool_generation WHERE id = 1", logger: database.logger)
        for try await value in rows.decode(Int64.self) { generation = value }
        return generation
    }

    private static func key(_ cells: PostgresRandomAccessRow) throws -> PoolStateKey {
        func value<T: PostgresDecodable>(_ column: String, _: T.Type = T.self) throws -> T {
            try cells[column].decode(T.self)
        }
        return PoolStateKey(
            id: try value("id"), hint: try value("key_hint"), sealed: try value("key_value"),
            health: KeyHealth(
                status: KeyStatus(rawValue: try value("status")) ?? .active, reason: try value("status_reason"),
                statusCode: try value("status_code"), since: try value("status_since", Int64?.self) ?? 0,
                nextProbeAt: try value("next_probe_at"), consecutiveFailures: try value("consecutive_failures"),
                coolingLevel: try value("cooling_level"), markedByToken: try value("marked_by_token")),
            models: try value("models"))
    }
}
