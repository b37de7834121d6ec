/// The audit log's operations, the same on every engine: `AuditLog` (SQLite) and `PostgresAuditLog`, held to one
/// behaviour by one suite run against both. A store that changes something appends its entry in its own
/// transaction instead (`AuditLog.record(_:_:)`, `PostgresAuditLog.record(_:_:logger:)`).
public protocol AuditLogging: Sendable {
    /// Appends `entry` in its own transaction.
    func record(_ entry: AuditEntry) async throws
    /// Entries newest first, `limit` from `offset`, optionally of one action only; and how many match.
    func page(limit: Int, offset: Int, action: String?) async throws -> (entries: [AuditEntry], total: Int)
}
