import Foundation
import GRDB

/// One change made through the admin API, as the audit log keeps it; `detail` never holds a secret.
public struct AuditEntry: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "audit_log"

    /// Row id, nil before insertion.
    public var id: Int64?
    /// When (Unix ms).
    public var timestamp: Int64
    /// Who: `admin-token` for bearer requests, `session:<8 hex of the session hash>` for logged-in operators.
    public var actor: String
    /// The client address the change came from.
    public var client: String
    /// What, such as `key.create` or `settings.update`.
    public var action: String
    /// The object changed, such as `key:3` or `model:gpt-4o`.
    public var target: String?
    /// JSON with the changed fields; key values appear only as masked hints.
    public var detail: String?

    enum CodingKeys: String, CodingKey {
        case id, actor, client, action, target, detail, timestamp = "ts"
    }

    /// An entry stamped `now` (Unix ms).
    public init(actor: String, client: String, action: String, target: String?, detail: String?, now: Int64) {
        id = nil
        timestamp = now
        self.actor = actor
        self.client = client
        self.action = action
        self.target = target
        self.detail = detail
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

/// Reads and appends the audit log on SQLite.
public struct AuditLog: AuditLogging {
    /// The shared database.
    public let database: ProxyDatabase

    /// The log in `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    public func record(_ entry: AuditEntry) async throws {
        try await database.pool.write { db in try Self.record(entry, db) }
    }

    /// Appends `entry` in the caller's transaction, so the change and its entry commit together.
    public static func record(_ entry: AuditEntry, _ db: Database) throws {
        var entry = entry
        try entry.insert(db)
    }

    public func page(limit: Int, offset: Int, action: String?) async throws -> (entries: [AuditEntry], total: Int) {
        try await database.pool.read { db in
            var request = AuditEntry.all()
            if let action { request = request.filter(Column("action") == action) }
            let total = try request.fetchCount(db)
            let entries = try request.order(Column("id").desc).limit(limit, offset: offset).fetchAll(db)
            return (entries, total)
        }
    }
}
