import PostgresNIO

/// Operator sessions on PostgreSQL; behaves as `AdminSessionStore` does on SQLite.
public struct PostgresAdminSessionStore: AdminSessionStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// The sessions in `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func insert(_ session: AdminSession, now: Int64) async throws {
        try await database.transaction { connection in
            try await connection.query("DELETE FROM admin_sessions WHERE expires_at <= \(now)", logger: database.logger)
            try await connection.query(
                """
                INSERT INTO admin_sessions (id_hash, csrf_token, client, created_at, expires_at)
                VALUES (\(session.idHash), \(session.csrfToken), \(session.client), \(session.createdAt),
                    \(session.expiresAt))
                """, logger: database.logger)
        }
    }

    public func session(idHash: String) async throws -> AdminSession? {
        try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT csrf_token, client, created_at, expires_at FROM admin_sessions WHERE id_hash = \(idHash)",
                logger: database.logger)
            var session: AdminSession?
            for try await (csrf, client, createdAt, expiresAt) in rows.decode((String, String, Int64, Int64).self) {
                session = AdminSession(
                    idHash: idHash, csrfToken: csrf, client: client, createdAt: createdAt, expiresAt: expiresAt)
            }
            return session
        }
    }

    public func delete(idHash: String) async throws {
        try await database.connection { connection in
            try await connection.query("DELETE FROM admin_sessions WHERE id_hash = \(idHash)", logger: database.logger)
        }
    }
}
