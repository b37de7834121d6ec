import GRDB

/// Operator sessions on SQLite.
public struct AdminSessionStore: AdminSessionStoring {
    /// The shared database.
    public let database: ProxyDatabase

    /// The sessions in `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    public func insert(_ session: AdminSession, now: Int64) async throws {
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM admin_sessions WHERE expires_at <= ?", arguments: [now])
            try db.execute(
                sql: """
                    INSERT INTO admin_sessions (id_hash, csrf_token, client, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [session.idHash, session.csrfToken, session.client, session.createdAt, session.expiresAt])
        }
    }

    public func session(idHash: String) async throws -> AdminSession? {
        try await database.pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT csrf_token, client, created_at, expires_at FROM admin_sessions WHERE id_hash = ?",
                arguments: [idHash]
            ).map {
                AdminSession(
                    idHash: idHash, csrfToken: $0["csrf_token"], client: $0["client"], createdAt: $0["created_at"],
                    expiresAt: $0["expires_at"])
            }
        }
    }

    public func delete(idHash: String) async throws {
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM admin_sessions WHERE id_hash = ?", arguments: [idHash])
        }
    }
}
