import PostgresNIO

/// The `settings` table on PostgreSQL; behaves as `SettingsStore` does on SQLite.
public struct PostgresSettingsStore: SettingsStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// A store over `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func overrides() async throws -> [String: String] {
        try await database.connection { connection in
            let rows = try await connection.query("SELECT name, value FROM settings", logger: database.logger)
            var overrides: [String: String] = [:]
            for try await (name, value) in rows.decode((String, String).self) { overrides[name] = value }
            return overrides
        }
    }

    public func change(_ changes: [(LiveSetting, String?)], now: Int64, audit: AuditEntry?) async throws {
        try await database.transaction { connection in
            for (setting, value) in changes {
                if let value {
                    try await connection.query(
                        """
                        INSERT INTO settings (name, value, updated_at) VALUES (\(setting.rawValue), \(value), \(now))
                        ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                        """, logger: database.logger)
                } else {
                    try await connection.query(
                        "DELETE FROM settings WHERE name = \(setting.rawValue)", logger: database.logger)
                }
            }
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
        }
    }
}
