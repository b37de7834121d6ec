/// Per-minute request counts of client tokens, counted in the shared database so an `rpm_limit` holds across
/// every worker of every host: `TokenRateWindows` (SQLite) and `PostgresTokenRateWindows`, held to one behaviour
/// by one suite run against both.
public protocol TokenRateWindowing: Sendable {
    /// Counts one request of `tokenID` at `now` (Unix ms) and decides it against `limit` requests per minute.
    func admit(tokenID: Int64, limit: Int, now: Int64) async throws -> ClientTokenDecision

    /// Requests counted for `tokenID` in the minute containing `now`.
    func requests(tokenID: Int64, now: Int64) async throws -> Int
}

extension TokenRateWindows: TokenRateWindowing {}
