import Logging
import PostgresNIO

/// The `objects` table on PostgreSQL; behaves as `ObjectStore` does on SQLite.
public struct PostgresObjectStore: ObjectStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// A store over `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func apply(_ changes: [ObjectChange]) async throws {
        try await database.transaction { connection in
            try await Self.apply(changes, connection, logger: database.logger)
        }
    }

    /// Applies `changes` in the caller's transaction, in order.
    public static func apply(_ changes: [ObjectChange], _ connection: PostgresConnection, logger: Logger) async throws {
        for change in changes {
            switch change {
            case .created(let object):
                try await connection.query(
                    """
                    INSERT INTO objects (object_id, kind, key_id, token_id, created_at, expires_at)
                    VALUES (\(object.id), \(object.kind), \(object.keyID), \(object.tokenID), \(object.createdAt),
                    \(object.expiresAt)) ON CONFLICT (object_id) DO NOTHING
                    """, logger: logger)
            case .deleted(let id):
                try await connection.query("DELETE FROM objects WHERE object_id = \(id)", logger: logger)
            }
        }
    }

    public func object(id: String) async throws -> StoredObject? {
        try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT 0::BIGINT, \(unescaped: Self.columns) FROM objects WHERE object_id = \(id)",
                logger: database.logger)
            return try await Self.objects(rows).first?.object
        }
    }

    public func objects(
        after seq: Int64, now: Int64, limit: Int
    ) async throws -> (
        objects: [StoredObject], last: Int64
    ) {
        try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT seq, \(unescaped: Self.columns) FROM objects WHERE seq > \(seq) ORDER BY seq LIMIT \(limit)",
                logger: database.logger)
            let read = try await Self.objects(rows)
            return (read.map(\.object).filter { $0.expiresAt > now }, read.last?.seq ?? seq)
        }
    }

    public func deleteExpired(now: Int64) async throws -> Int {
        try await database.connection { connection in
            let rows = try await connection.query(
                "DELETE FROM objects WHERE expires_at <= \(now) RETURNING seq", logger: database.logger)
            var count = 0
            for try await _ in rows.decode(Int64.self) { count += 1 }
            return count
        }
    }

    static let columns = "object_id, kind, key_id, token_id, created_at, expires_at"

    static func objects(_ rows: PostgresRowSequence) async throws -> [(seq: Int64, object: StoredObject)] {
        var objects: [(seq: Int64, object: StoredObject)] = []
        for try await (seq, id, kind, key, token, created, expires) in rows.decode(
            (Int64, String, String, Int64, Int64, Int64, Int64).self)
        {
            let object = StoredObject(
                id: id, kind: kind, keyID: key, tokenID: token, createdAt: created, expiresAt: expires)
            objects.append((seq, object))
        }
        return objects
    }
}
