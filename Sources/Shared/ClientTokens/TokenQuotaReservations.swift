import GRDB

/// Tokens reserved against client tokens' quotas by requests in flight, in the shared database, so that
/// parallel requests on any worker cannot together spend far past a quota: a request of a token with a
/// quota starts only while `used + reserved < quota`, and reserves its estimate (`QuotaEstimate`) in the
/// same transaction. The collector deletes the reservation in the transaction that counts the request's
/// usage row, so the real usage replaces the estimate at one instant. Tokens without a quota never
/// touch this table.
public struct TokenQuotaReservations: Sendable {
    /// The shared database.
    public let database: ProxyDatabase
    /// A reservation older than this is no longer counted: its worker died before the request's usage
    /// row was sent (a live request's row always comes, and deletes it).
    public static let lifetimeMilliseconds: Int64 = 3_600_000

    /// Reservations in `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    /// Reserves `tokens` for request `requestID` of `tokenID` when what the token used and what requests in
    /// flight reserved stay below `quota`; otherwise reserves nothing and refuses.
    public func reserve(
        tokenID: Int64, requestID: String, tokens: Int64, quota: Int64, now: Int64
    ) async throws -> ClientTokenDecision {
        try await database.pool.write { db in
            try db.execute(
                sql: "DELETE FROM token_quota_reservations WHERE token_id = ? AND created_at < ?",
                arguments: [tokenID, now - Self.lifetimeMilliseconds])
            let used =
                try Int64.fetchOne(
                    db, sql: "SELECT prompt_tokens + completion_tokens FROM client_tokens WHERE id = ?",
                    arguments: [tokenID]) ?? 0
            let reserved =
                try Int64.fetchOne(
                    db, sql: "SELECT COALESCE(SUM(tokens), 0) FROM token_quota_reservations WHERE token_id = ?",
                    arguments: [tokenID]) ?? 0
            let decision = ClientTokenPolicy.quota(used: used, reserved: reserved, quota: quota)
            guard decision == .allow else { return decision }
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO token_quota_reservations (request_id, token_id, tokens, created_at)
                    VALUES (?, ?, ?, ?)
                    """, arguments: [requestID, tokenID, max(0, tokens), now])
            return .allow
        }
    }

    /// Drops the reservation of `requestID` (a request whose usage is not recorded, so the collector never
    /// sees its row).
    public func release(requestID: String) async throws {
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM token_quota_reservations WHERE request_id = ?", arguments: [requestID])
        }
    }

    /// Drops the reservations of the requests whose usage rows are being counted, in the caller's
    /// transaction (the collector's batch); a cheap no-op while nothing is reserved.
    public static func release(requestIDs: some Sequence<String>, _ db: Database) throws {
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM token_quota_reservations)") == true else {
            return
        }
        let statement = try db.cachedStatement(sql: "DELETE FROM token_quota_reservations WHERE request_id = ?")
        for id in requestIDs { try statement.execute(arguments: [id]) }
    }

    /// Tokens reserved for `tokenID` now (tests and tools).
    public func reserved(tokenID: Int64) async throws -> Int64 {
        try await database.pool.read { db in
            try Int64.fetchOne(
                db, sql: "SELECT COALESCE(SUM(tokens), 0) FROM token_quota_reservations WHERE token_id = ?",
                arguments: [tokenID]) ?? 0
        }
    }
}
