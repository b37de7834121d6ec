import PostgresNIO

/// Per-minute request counts of client tokens on PostgreSQL; behaves as `TokenRateWindows` does on SQLite. The
/// window's `INSERT … ON CONFLICT DO UPDATE … RETURNING` is atomic: requests of one token from every host wait on
/// the window row's lock, so each reads a distinct count.
public struct PostgresTokenRateWindows: TokenRateWindowing {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// Windows over `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func admit(tokenID: Int64, limit: Int, now: Int64) async throws -> ClientTokenDecision {
        let windowStart = now - now % TokenRateWindows.windowMilliseconds
        let logger = database.logger
        let requests = try await database.connection { connection -> Int64 in
            var count: Int64 = 1
            let rows = try await connection.query(
                """
                INSERT INTO token_rate_windows (token_id, window_start, requests) VALUES (\(tokenID), \(windowStart), 1)
                ON CONFLICT (token_id, window_start) DO UPDATE SET requests = token_rate_windows.requests + 1
                RETURNING requests
                """, logger: logger)
            for try await value in rows.decode(Int64.self) { count = value }
            if count == 1 {
                // First request of a new minute: the token's older windows are no longer needed.
                try await connection.query(
                    "DELETE FROM token_rate_windows WHERE token_id = \(tokenID) AND window_start < \(windowStart)",
                    logger: logger)
            }
            return count
        }
        return ClientTokenPolicy.rate(requests: Int(requests), limit: limit, windowStart: windowStart, now: now)
    }

    public func requests(tokenID: Int64, now: Int64) async throws -> Int {
        let windowStart = now - now % TokenRateWindows.windowMilliseconds
        return try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT requests FROM token_rate_windows WHERE token_id = \(tokenID) AND window_start = \(windowStart)",
                logger: database.logger)
            for try await value in rows.decode(Int64.self) { return Int(value) }
            return 0
        }
    }
}
