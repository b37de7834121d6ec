/// Tokens reserved against client tokens' quotas by requests in flight, in the shared database, so a
/// `token_quota` holds across every worker of every host: `TokenQuotaReservations` (SQLite) and
/// `PostgresTokenQuotaReservations`, held to one behaviour by one suite run against both.
public protocol TokenQuotaReserving: Sendable {
    /// Reserves `tokens` for request `requestID` of `tokenID` when what the token used and what requests in
    /// flight reserved stay below `quota`; otherwise reserves nothing and refuses.
    func reserve(
        tokenID: Int64, requestID: String, tokens: Int64, quota: Int64, now: Int64
    ) async throws -> ClientTokenDecision

    /// Drops the reservation of `requestID` (a request whose usage is not recorded).
    func release(requestID: String) async throws

    /// Tokens reserved for `tokenID` now (tests and tools).
    func reserved(tokenID: Int64) async throws -> Int64
}

extension TokenQuotaReservations: TokenQuotaReserving {}
