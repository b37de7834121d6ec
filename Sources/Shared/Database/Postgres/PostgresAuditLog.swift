import Logging
import PostgresNIO

/// Appends to the audit log on PostgreSQL, in the caller's transaction (as `AuditLog.record(_:_:)` does on SQLite).
enum PostgresAuditLog {
    /// Appends `entry` on `connection`, so the change and its entry commit together.
    static func record(_ entry: AuditEntry, _ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO audit_log (ts, actor, client, action, target, detail)
            VALUES (\(entry.timestamp), \(entry.actor), \(entry.client), \(entry.action), \(entry.target), \(entry.detail))
            """, logger: logger)
    }
}
