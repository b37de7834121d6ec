import Foundation
import GRDB
import Shared

/// Operator sessions, kept in the database (so they survive the admin server being replaced on SIGHUP);
/// only the SHA-256 of a session id is stored.
struct SessionStore: Sendable {
    let database: ProxyDatabase

    /// A session as its holder sees it once: the cookie value and the CSRF token.
    struct Created: Sendable {
        let id: String
        let csrfToken: String
        let expiresAt: Int64
    }

    /// What a cookie's session id resolves to.
    enum Lookup: Sendable, Equatable {
        /// A live session.
        case valid(AdminIdentity)
        /// Known but past its expiry (and now deleted).
        case expired
        /// Not a session at all.
        case unknown
    }

    /// Starts a session for `client` lasting `lifetime` ms from `now`; expired sessions are pruned.
    func create(client: String, now: Int64, lifetime: Int64) async throws -> Created {
        let id = SecretFile.randomToken()
        let csrf = SecretFile.randomToken()
        let expiresAt = now + lifetime
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM admin_sessions WHERE expires_at <= ?", arguments: [now])
            try db.execute(
                sql: """
                    INSERT INTO admin_sessions (id_hash, csrf_token, client, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?)
                    """, arguments: [SecretDigest.sha256Hex(id), csrf, client, now, expiresAt])
        }
        return Created(id: id, csrfToken: csrf, expiresAt: expiresAt)
    }

    /// The session a cookie names, at `now`.
    func lookup(id: String, now: Int64) async throws -> Lookup {
        let hash = SecretDigest.sha256Hex(id)
        let row = try await database.pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT csrf_token, expires_at FROM admin_sessions WHERE id_hash = ?", arguments: [hash]
            )
            .map { row -> (csrf: String, expiresAt: Int64) in (row["csrf_token"], row["expires_at"]) }
        }
        guard let row else { return .unknown }
        guard row.expiresAt > now else {
            try await end(idHash: hash)
            return .expired
        }
        return .valid(.session(idHash: hash, csrfToken: row.csrf, expiresAt: row.expiresAt))
    }

    /// Ends the session with this stored hash.
    func end(idHash: String) async throws {
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM admin_sessions WHERE id_hash = ?", arguments: [idHash])
        }
    }
}
