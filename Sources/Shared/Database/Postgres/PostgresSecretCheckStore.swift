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

    public func reseal(under box: SecretBox) async throws -> SecretRotation.Pass {
        try await database.transaction { connection in
            var pass = SecretRotation.Pass(resealed: 0, keys: 0)
            // Locked until the commit: a key another host changes meanwhile waits for this pass.
            let rows = try await connection.query(
                "SELECT id, key_value FROM keys ORDER BY id FOR UPDATE", logger: database.logger)
            var keys: [(id: Int64, value: String)] = []
            for try await (id, value) in rows.decode((Int64, String).self) { keys.append((id, value)) }
            for key in keys {
                pass.keys += 1
                guard let sealed = try SecretRotation.resealed(key.value, key: key.id, under: box) else { continue }
                try await connection.query(
                    "UPDATE keys SET key_value = \(sealed) WHERE id = \(key.id)", logger: database.logger)
                pass.resealed += 1
            }
            let checks = try await connection.query(
                "SELECT sealed_value FROM secret_check WHERE id = 1 FOR UPDATE", logger: database.logger)
            var check: String?
            for try await value in checks.decode(String.self) { check = value }
            if let check, let sealed = try SecretRotation.resealed(check, key: nil, under: box) {
                try await connection.query(
                    "UPDATE secret_check SET sealed_value = \(sealed) WHERE id = 1", logger: database.logger)
            }
            return pass
        }
    }
}
