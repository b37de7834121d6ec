import GRDB

/// The `objects` table on SQLite: which key holds each object created through the gateway, and which client
/// token owns it. The collector writes it (`apply(_:_:)` inside its batch's transaction); workers poll it.
public struct ObjectStore: ObjectStoring {
    /// The shared database.
    public let database: ProxyDatabase

    /// A store over `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    public func apply(_ changes: [ObjectChange]) async throws {
        try await database.pool.write { db in try Self.apply(changes, db) }
    }

    /// Applies `changes` in the caller's transaction, in order.
    public static func apply(_ changes: [ObjectChange], _ db: Database) throws {
        for change in changes {
            switch change {
            case .created(let object):
                try db.execute(
                    sql: """
                        INSERT INTO objects (object_id, kind, key_id, token_id, created_at, expires_at)
                        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (object_id) DO NOTHING
                        """,
                    arguments: [
                        object.id, object.kind, object.keyID, object.tokenID, object.createdAt, object.expiresAt,
                    ])
            case .deleted(let id):
                try db.execute(sql: "DELETE FROM objects WHERE object_id = ?", arguments: [id])
            }
        }
    }

    public func object(id: String) async throws -> StoredObject? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.columns) FROM objects WHERE object_id = ?", arguments: [id])
                .map(Self.object)
        }
    }

    public func objects(
        after seq: Int64, now: Int64, limit: Int
    ) async throws -> (
        objects: [StoredObject], last: Int64
    ) {
        try await database.pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT seq, \(Self.columns) FROM objects WHERE seq > ? ORDER BY seq LIMIT ?",
                arguments: [seq, limit])
            let last: Int64 = rows.last?["seq"] ?? seq
            return (rows.map(Self.object).filter { $0.expiresAt > now }, last)
        }
    }

    public func deleteExpired(now: Int64) async throws -> Int {
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM objects WHERE expires_at <= ?", arguments: [now])
            return db.changesCount
        }
    }

    static let columns = "object_id, kind, key_id, token_id, created_at, expires_at"

    static func object(_ row: Row) -> StoredObject {
        StoredObject(
            id: row["object_id"], kind: row["kind"], keyID: row["key_id"], tokenID: row["token_id"],
            createdAt: row["created_at"], expiresAt: row["expires_at"])
    }
}
