import Foundation
import Shared

/// Operator sessions, kept in the database (so they survive the admin server being replaced on SIGHUP, and
/// every host of a cluster shares them); only the SHA-256 of a session id is stored.
struct SessionStore: Sendable {
    /// Where the sessions are stored.
    let storage: any AdminSessionStoring

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
        try await storage.insert(
            AdminSession(
                idHash: SecretDigest.sha256Hex(id), csrfToken: csrf, client: client, createdAt: now,
                expiresAt: expiresAt),
            now: now)
        return Created(id: id, csrfToken: csrf, expiresAt: expiresAt)
    }

    /// The session a cookie names, at `now`.
    func lookup(id: String, now: Int64) async throws -> Lookup {
        let hash = SecretDigest.sha256Hex(id)
        guard let session = try await storage.session(idHash: hash) else { return .unknown }
        guard session.expiresAt > now else {
            try await end(idHash: hash)
            return .expired
        }
        return .valid(.session(idHash: hash, csrfToken: session.csrfToken, expiresAt: session.expiresAt))
    }

    /// Ends the session with this stored hash.
    func end(idHash: String) async throws {
        try await storage.delete(idHash: idHash)
    }
}
