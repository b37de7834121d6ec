import GRDB

/// The `least_used` strategy's one operation on the shared pick counts: `LeastUsedPicks` (SQLite) and
/// `PostgresLeastUsedPicks`.
public protocol LeastUsedPicking: Sendable {
    /// Counts one pick of the least-picked of `ids` (ties to the lowest id) and returns it; nil when none of
    /// them is stored any more.
    func pick(among ids: [Int64]) async throws -> Int64?
}

/// `least_used` picks on SQLite: one `UPDATE … RETURNING` over `keys.pick_count`.
public struct LeastUsedPicks: LeastUsedPicking {
    /// The shared database.
    public let database: ProxyDatabase

    /// Picks in `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    public func pick(among ids: [Int64]) async throws -> Int64? {
        let list = "[" + ids.map(String.init).joined(separator: ",") + "]"
        return try await database.pool.write { db in
            try Int64.fetchOne(
                db,
                sql: """
                    UPDATE keys SET pick_count = pick_count + 1
                    WHERE id = (
                        SELECT id FROM keys WHERE id IN (SELECT value FROM json_each(?))
                        ORDER BY pick_count, id LIMIT 1)
                    RETURNING id
                    """,
                arguments: [list])
        }
    }
}
