/// The client tokens' operations the admin API uses, the same on every engine: `TokenStore` (SQLite) and
/// `PostgresTokenStore`, held to one behaviour by one test suite run against both.
public protocol TokenStoring: Sendable {
    /// Creates a token with `limits` (and records `audit` with it); the returned value is the only time the
    /// token is ever visible.
    func create(
        name: String, limits: ClientTokenLimits, audit: AuditEntry?
    ) async throws -> (token: ClientToken, value: String)
    /// Every token, the internal one included, oldest first.
    func list() async throws -> [ClientToken]
    /// The tokens operators manage (not the admin server's internal one), oldest first.
    func listManaged() async throws -> [ClientToken]
    /// One managed token, or nil.
    func managed(id: Int64) async throws -> ClientToken?
    /// Applies `change` to a managed token (and records `audit`); nil when there is none.
    func update(
        id: Int64, audit: AuditEntry?, _ change: @escaping @Sendable (inout ClientToken) -> Void
    ) async throws -> ClientToken?
    /// Revokes a managed token (and records `audit` when it was active).
    func revoke(id: Int64, audit: AuditEntry?) async throws -> TokenStore.RevokeResult
    /// Makes `value` the one internal token (the admin server's, for its chat console), replacing any earlier
    /// one; returns its id.
    func replaceInternal(value: String) async throws -> Int64
}

extension TokenStore: TokenStoring {}
