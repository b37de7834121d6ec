import GRDB

/// The `settings` table on SQLite.
public struct SettingsStore: SettingsStoring {
    /// The shared database.
    public let database: ProxyDatabase

    /// A store over `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    public func overrides() async throws -> [String: String] {
        try await database.pool.read { db in try LiveSettings.overrides(db) }
    }

    public func change(_ changes: [(LiveSetting, String?)], now: Int64, audit: AuditEntry?) async throws {
        try await database.pool.write { db in
            for (setting, value) in changes {
                if let value {
                    try db.execute(
                        sql: """
                            INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
                            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                            """, arguments: [setting.rawValue, value, now])
                } else {
                    try db.execute(sql: "DELETE FROM settings WHERE name = ?", arguments: [setting.rawValue])
                }
            }
            if let audit { try AuditLog.record(audit, db) }
        }
    }
}
