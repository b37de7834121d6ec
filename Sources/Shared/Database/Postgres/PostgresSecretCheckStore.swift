import PostgresNIO

/// The secret check on PostgreSQL; behaves as `SecretCheckStore` does on SQLite.
public struct PostgresSecretCheckStore: SecretCheckStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// A store over `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func storedCheck() async throws -> String? {
        try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT sealed_value FROM secret_check WHERE id = 1", logger: database.logger)
            for try await sealed in rows.decode(String.self) { return sealed }
            return nil
        }
    }

    public func sealedKeyValues() async throws -> [String] {
        try await database.connection { connection in
            let rows = try await connection.query("SELECT key_value FROM keys ORDER BY id", logger: database.logger)
            var values: [String] = []
            for try await sealed in rows.decode(String.self) { values.append(sealed) }
            return values
        }
    }

    public func storeCheckIfAbsent(_ sealed: String, now: Int64) async throws -> String {
        try await database.connection { connection in
            // One statement: the row inserted, or (another host stored first) the row that is there.
            let rows = try await connection.query(
                """
                WITH inserted AS (
                    INSERT INTO secret_check (id, sealed_value, created_at) VALUES (1, \(sealed), \(now))
                    ON CONFLICT (id) DO NOTHING RETURNING sealed_value
                )
                SELECT sealed_value FROM inserted
                UNION ALL SELECT sealed_value FROM secret_check WHERE id = 1
                LIMIT 1
                """, logger: database.logger)
            for try await stored in rows.decode(String.self) { return stored }
            return sealed
        }
    }
}
