import PostgresNIO

/// `least_used` picks on PostgreSQL; behaves as `LeastUsedPicks` does on SQLite: every pick is counted once (the
/// row's lock orders concurrent picks; two that chose the same key both count on it, as on SQLite's next pick).
public struct PostgresLeastUsedPicks: LeastUsedPicking {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// Picks in `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func pick(among ids: [Int64]) async throws -> Int64? {
        try await database.connection { connection in
            let rows = try await connection.query(
                """
                UPDATE keys SET pick_count = pick_count + 1
                WHERE id = (SELECT id FROM keys WHERE id = ANY(\(ids)) ORDER BY pick_count, id LIMIT 1)
                RETURNING id
                """, logger: database.logger)
            for try await id in rows.decode(Int64.self) { return id }
            return nil
        }
    }
}
