import Foundation
import GRDB

extension KeyStore {
    /// One key, or nil.
    public func key(id: Int64) async throws -> UpstreamKey? {
        try await database.pool.read { db in try UpstreamKey.fetchOne(db, key: id) }
    }

    /// Renames a key and/or sets an operator status (`active` or `disabled`), recording the status change in
    /// `key_events` and `audit` in the same transaction; nil when no key has that id. Setting a status
    /// starts the key afresh: no failures counted, no probe scheduled.
    public func update(id: Int64, name: String?, status: KeyStatus?, audit: AuditEntry?) async throws -> UpstreamKey? {
        precondition(status.map(KeyStatus.operatorSettable.contains) ?? true, "operators set active or disabled only")
        return try await database.pool.write { db in
            guard var key = try UpstreamKey.fetchOne(db, key: id) else { return nil }
            let now = Date()
            if let name { key.name = name }
            if let status, status != key.status {
                let ms = Int64((now.timeIntervalSince1970 * 1000).rounded())
                try db.execute(
                    sql: """
                        INSERT INTO key_events (ts, key_id, from_status, to_status, reason, status_code)
                        VALUES (?, ?, ?, ?, 'set by operator', NULL)
                        """, arguments: [ms, id, key.status, status])
                key.setByOperator(status, at: ms)
            }
            key.updatedAt = now
            try key.update(db)
            if let audit { try AuditLog.record(audit, db) }
            return key
        }
    }

    /// Deletes a key and records `audit` in the same transaction; false when no key has that id.
    public func remove(id: Int64, audit: AuditEntry?) async throws -> Bool {
        try await database.pool.write { db in
            guard try UpstreamKey.deleteOne(db, key: id) else { return false }
            if let audit { try AuditLog.record(audit, db) }
            return true
        }
    }
}
