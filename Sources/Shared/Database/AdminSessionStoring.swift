/// One operator session as `admin_sessions` keeps it: only the SHA-256 of its id, never the id.
public struct AdminSession: Sendable, Equatable {
    /// SHA-256 (hex) of the session id the cookie holds.
    public var idHash: String
    /// The token a logged-in browser echoes on every change.
    public var csrfToken: String
    /// The client address it was created from.
    public var client: String
    /// When it was created (Unix ms).
    public var createdAt: Int64
    /// When it ends (Unix ms).
    public var expiresAt: Int64

    /// A session with every field given.
    public init(idHash: String, csrfToken: String, client: String, createdAt: Int64, expiresAt: Int64) {
        self.idHash = idHash
        self.csrfToken = csrfToken
        self.client = client
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// The `admin_sessions` table's operations, the same on every engine: `AdminSessionStore` (SQLite) and
/// `PostgresAdminSessionStore`, held to one behaviour by one suite run against both. Shared by every host, so an
/// operator logged in through one host's console is logged in on all.
public protocol AdminSessionStoring: Sendable {
    /// Stores `session` and deletes every session expired at `now`, in one transaction.
    func insert(_ session: AdminSession, now: Int64) async throws
    /// The session stored under `idHash`, expired or not.
    func session(idHash: String) async throws -> AdminSession?
    /// Deletes the session stored under `idHash`, if any.
    func delete(idHash: String) async throws
}
