import Logging
import PostgresNIO

/// Quota reservations on PostgreSQL; behaves as `TokenQuotaReservations` does on SQLite. SQLite serialises the
/// check and the reservation by its one writer; here a transaction lock on the token does, so parallel requests
/// of one token on every host decide one after the other.
public struct PostgresTokenQuotaReservations: TokenQuotaReserving {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// The `pg_advisory_xact_lock` namespace of a token's reservations ("op-quot" in ASCII, shifted), xor the
    /// token id.
    static let lockNamespace: Int64 = 0x6f70_2d71_756f_7400

    /// Reservations in `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func reserve(
        tokenID: Int64, requestID: String, tokens: Int64, quota: Int64, now: Int64
    ) async throws -> ClientTokenDecision {
        let logger = database.logger
        return try await database.transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockNamespace ^ tokenID))", logger: logger)
            let expired = now - TokenQuotaReservations.lifetimeMilliseconds
            try await connection.query(
                "DELETE FROM token_quota_reservations WHERE token_id = \(tokenID) AND created_at < \(expired)",
                logger: logger)
            var used: Int64 = 0
            let usedRows = try await connection.query(
                "SELECT prompt_tokens + completion_tokens FROM client_tokens WHERE id = \(tokenID)", logger: logger)
            for try await value in usedRows.decode(Int64.self) { used = value }
            let reserved = try await Self.reserved(tokenID: tokenID, connection, logger: logger)
            let decision = ClientTokenPolicy.quota(used: used, reserved: reserved, quota: quota)
            guard decision == .allow else { return decision }
            try await connection.query(
                """
                INSERT INTO token_quota_reservations (request_id, token_id, tokens, created_at)
                VALUES (\(requestID), \(tokenID), \(max(0, tokens)), \(now))
                ON CONFLICT (request_id) DO UPDATE
                SET token_id = excluded.token_id, tokens = excluded.tokens, created_at = excluded.created_at
                """, logger: logger)
            return .allow
        }
    }

    public func release(requestID: String) async throws {
        try await database.connection { connection in
            try await connection.query(
                "DELETE FROM token_quota_reservations WHERE request_id = \(requestID)", logger: database.logger)
        }
    }

    public func reserved(tokenID: Int64) async throws -> Int64 {
        try await database.connection { connection in
            try await Self.reserved(tokenID: tokenID, connection, logger: database.logger)
        }
    }

    private static func reserved(tokenID: Int64, _ connection: PostgresConnection, logger: Logger) async throws -> Int64
    {
        let rows = try await connection.query(
            "SELECT COALESCE(SUM(tokens), 0)::BIGINT FROM token_quota_reservations WHERE token_id = \(tokenID)",
            logger: logger)
        for try await value in rows.decode(Int64.self) { return value }
        return 0
    }
}
