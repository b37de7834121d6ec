import PostgresNIO

extension PostgresKeyHealthStore {
    public func probeTarget(keyID id: Int64) async throws -> (sealed: String, status: KeyStatus)? {
        try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT key_value, status FROM keys WHERE id = \(id)", logger: database.logger)
            for try await (sealed, status) in rows.decode((String, String).self) {
                return (sealed, KeyStatus(rawValue: status) ?? .active)
            }
            return nil
        }
    }

    public func keysWithoutModels(probedBefore: Int64) async throws -> [Int64] {
        try await ids(
            """
            SELECT id FROM keys WHERE status = 'active' AND models_checked_at IS NULL
            AND COALESCE(last_probe_at, 0) <= \(probedBefore) ORDER BY id
            """)
    }
}
