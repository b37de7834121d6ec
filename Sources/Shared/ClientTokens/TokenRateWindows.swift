import GRDB

/// Per-minute request counts of client tokens in the shared database, so an RPM limit holds across all
/// workers: each request of a limited token is one `UPSERT … RETURNING` on its current minute.
public struct TokenRateWindows: Sendable {
    /// The shared database.
    public let database: ProxyDatabase

    /// Length of one window: a minute.
    public static let windowMilliseconds: Int64 = 60_000

    /// Windows over `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    /// Counts one request of `tokenID` at `now` (Unix ms) and decides it against `limit` requests per minute.
    public func admit(tokenID: Int64, limit: Int, now: Int64) async throws -> ClientTokenDecision {
        let windowStart = now - now % Self.windowMilliseconds
        let requests = try await database.pool.write { db -> Int in
            let count =
                try Int.fetchOne(
                    db,
                    sql: """
                        INSERT INTO token_rate_windows (token_id, window_start, requests) VALUES (?, ?, 1)
                        ON CONFLICT (token_id, window_start) DO UPDATE SET requests = requests + 1
                        RETURNING requests
                        """, arguments: [tokenID, windowStart]) ?? 1
            if count == 1 {
                // First request of a new minute: the token's older windows are no longer needed.
                try db.execute(
                    sql: "DELETE FROM token_rate_windows WHERE token_id = ? AND window_start < ?",
                    arguments: [tokenID, windowStart])
            }
            return count
        }
        return ClientTokenPolicy.rate(requests: requests, limit: limit, windowStart: windowStart, now: now)
    }

    /// Requests counted for `tokenID` in the minute containing `now`.
    public func requests(tokenID: Int64, now: Int64) async throws -> Int {
        let windowStart = now - now % Self.windowMilliseconds
        return try await database.pool.read { db in
            try Int.fetchOne(
                db, sql: "SELECT requests FROM token_rate_windows WHERE token_id = ? AND window_start = ?",
                arguments: [tokenID, windowStart]) ?? 0
        }
    }
}
