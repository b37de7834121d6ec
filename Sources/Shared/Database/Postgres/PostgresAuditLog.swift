import Logging
import PostgresNIO

/// Reads and appends the audit log on PostgreSQL; behaves as `AuditLog` does on SQLite.
public struct PostgresAuditLog: AuditLogging {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// The log in `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func record(_ entry: AuditEntry) async throws {
        try await database.connection { connection in
            try await Self.record(entry, connection, logger: database.logger)
        }
    }

    public func page(limit: Int, offset: Int, action: String?) async throws -> (entries: [AuditEntry], total: Int) {
        // One transaction: the page and its total are read from one snapshot, as SQLite's read does.
        try await database.transaction { connection in
            let logger = database.logger
            var total: Int64 = 0
            let counted = try await connection.query(
                "SELECT COUNT(*) FROM audit_log WHERE \(action)::text IS NULL OR action = \(action)", logger: logger)
            for try await count in counted.decode(Int64.self) { total = count }
            let rows = try await connection.query(
                """
                SELECT id, ts, actor, client, action, target, detail FROM audit_log
                WHERE \(action)::text IS NULL OR action = \(action) ORDER BY id DESC LIMIT \(Int64(limit)) OFFSET \(Int64(offset))
                """, logger: logger)
            var entries: [AuditEntry] = []
            for try await (id, timestamp, actor, client, action, target, detail) in rows.decode(
                (Int64, Int64, String, String, String, String?, String?).self)
            {
                var entry = AuditEntry(
                    actor: actor, client: client, action: action, target: target, detail: detail, now: timestamp)
                entry.id = id
                entries.append(entry)
            }
            return (entries, Int(total))
        }
    }

    /// Appends `entry` on `connection`, in the caller's transaction, so the change and its entry commit together.
    static func record(_ entry: AuditEntry, _ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO audit_log (ts, actor, client, action, target, detail)
            VALUES (\(entry.timestamp), \(entry.actor), \(entry.client), \(entry.action), \(entry.target), \(entry.detail))
            """, logger: logger)
    }
}
