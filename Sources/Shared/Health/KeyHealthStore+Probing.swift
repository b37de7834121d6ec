import GRDB

extension KeyHealthStore {
    public func probeTarget(keyID id: Int64) async throws -> (sealed: String, status: KeyStatus)? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT key_value, status FROM keys WHERE id = ?", arguments: [id])
                .map { row in (row["key_value"], KeyStatus(rawValue: row["status"]) ?? .active) }
        }
    }

    public func keysWithoutModels(probedBefore: Int64) async throws -> [Int64] {
        try await database.pool.read { db in
            try Int64.fetchAll(
                db,
                sql: """
                    SELECT id FROM keys WHERE status = 'active' AND models_checked_at IS NULL
                    AND COALESCE(last_probe_at, 0) <= ? ORDER BY id
                    """,
                arguments: [probedBefore])
        }
    }
}
