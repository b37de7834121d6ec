import Foundation
import PostgresNIO

/// Client tokens on PostgreSQL; behaves as `TokenStore` does on SQLite (`allowed_models` as the same JSON text).
public struct PostgresTokenStore: TokenStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// A store over `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    /// The columns `tokens(_:)` reads, in its order.
    static let columns = """
        id, name, token_hash, token_hint, status, request_count, prompt_tokens, completion_tokens, last_used,
        created_at, revoked_at, allowed_models, rpm_limit, token_quota, expires_at, internal
        """

    public func create(
        name: String, limits: ClientTokenLimits, audit: AuditEntry?
    ) async throws -> (token: ClientToken, value: String) {
        let name = try KeyStore.validName(name)
        let value = SecretFile.randomToken(prefix: ClientToken.valuePrefix)
        var record = ClientToken(name: name, value: value)
        record.apply(limits)
        let stored = record
        record.id = try await database.transaction { connection in
            let id = try await Self.insert(stored, connection, database)
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
            return id
        }
        return (record, value)
    }

    public func list() async throws -> [ClientToken] {
        try await fetch("ORDER BY id")
    }

    public func listManaged() async throws -> [ClientToken] {
        try await fetch("WHERE NOT internal ORDER BY id")
    }

    public func managed(id: Int64) async throws -> ClientToken? {
        try await database.connection { connection in
            try await Self.tokens(
                connection.query(
                    "SELECT \(unescaped: Self.columns) FROM client_tokens WHERE NOT internal AND id = \(id)",
                    logger: database.logger)
            ).first
        }
    }

    public func update(
        id: Int64, audit: AuditEntry?, _ change: @escaping @Sendable (inout ClientToken) -> Void
    ) async throws -> ClientToken? {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "SELECT \(unescaped: Self.columns) FROM client_tokens WHERE NOT internal AND id = \(id) FOR UPDATE",
                logger: database.logger)
            guard var token = try await Self.tokens(rows).first else { return nil }
            change(&token)
            try await connection.query(
                """
                UPDATE client_tokens SET name = \(token.name), token_hash = \(token.tokenHash),
                    token_hint = \(token.hint), status = \(token.status.rawValue), request_count = \(token.requestCount),
                    prompt_tokens = \(token.promptTokens), completion_tokens = \(token.completionTokens),
                    last_used = \(token.lastUsed), created_at = \(token.createdAt), revoked_at = \(token.revokedAt),
                    allowed_models = \(try Self.json(token.allowedModels)), rpm_limit = \(token.rpmLimit),
                    token_quota = \(token.tokenQuota), expires_at = \(token.expiresAt), internal = \(token.isInternal)
                WHERE id = \(id)
                """, logger: database.logger)
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
            return token
        }
    }

    public func revoke(id: Int64, audit: AuditEntry?) async throws -> TokenStore.RevokeResult {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "SELECT status FROM client_tokens WHERE NOT internal AND id = \(id) FOR UPDATE",
                logger: database.logger)
            var status: String?
            for try await value in rows.decode(String.self) { status = value }
            guard let status else { return .notFound }
            guard status == ClientTokenStatus.active.rawValue else { return .alreadyRevoked }
            try await connection.query(
                "UPDATE client_tokens SET status = 'revoked', revoked_at = \(Date()) WHERE id = \(id)",
                logger: database.logger)
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
            return .revoked
        }
    }

    public func replaceInternal(value: String) async throws -> Int64 {
        var record = ClientToken(name: "admin console", value: value)
        record.isInternal = true
        let stored = record
        return try await database.transaction { connection in
            let logger = database.logger
            try await connection.query(
                "DELETE FROM client_tokens WHERE internal AND token_hash <> \(stored.tokenHash)", logger: logger)
            let rows = try await connection.query(
                """
                SELECT id FROM client_tokens WHERE token_hash = \(stored.tokenHash) AND internal AND status = 'active'
                """, logger: logger)
            for try await existing in rows.decode(Int64.self) { return existing }
            try await connection.query(
                "DELETE FROM client_tokens WHERE token_hash = \(stored.tokenHash)", logger: logger)
            return try await Self.insert(stored, connection, database)
        }
    }

    private func fetch(_ clause: String) async throws -> [ClientToken] {
        try await database.connection { connection in
            try await Self.tokens(
                connection.query(
                    PostgresQuery(unsafeSQL: "SELECT \(Self.columns) FROM client_tokens \(clause)"),
                    logger: database.logger))
        }
    }

    private static func insert(
        _ token: ClientToken, _ connection: PostgresConnection, _ database: PostgresProxyDatabase
    ) async throws -> Int64 {
        let rows = try await connection.query(
            """
            INSERT INTO client_tokens (name, token_hash, token_hint, status, request_count, prompt_tokens,
                completion_tokens, last_used, created_at, revoked_at, allowed_models, rpm_limit, token_quota,
                expires_at, internal)
            VALUES (\(token.name), \(token.tokenHash), \(token.hint), \(token.status.rawValue), \(token.requestCount),
                \(token.promptTokens), \(token.completionTokens), \(token.lastUsed), \(token.createdAt),
                \(token.revokedAt), \(try json(token.allowedModels)), \(token.rpmLimit), \(token.tokenQuota),
                \(token.expiresAt), \(token.isInternal))
            RETURNING id
            """, logger: database.logger)
        for try await id in rows.decode(Int64.self) { return id }
        throw PostgresStoreError.noRowReturned(table: "client_tokens")
    }

    /// `allowed_models` as SQLite's GRDB stores it: JSON text, or NULL.
    private static func json(_ models: [String]?) throws -> String? {
        try models.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
    }

    /// The tokens of rows of `columns`.
    static func tokens(_ rows: PostgresRowSequence) async throws -> [ClientToken] {
        var tokens: [ClientToken] = []
        for try await row in rows {
            let decoded = try row.decode(
                (
                    Int64, String, String, String, String, Int64, Int64, Int64, Date?, Date, Date?, String?, Int?,
                    Int64?, Int64?, Bool
                ).self)
            var token = ClientToken(name: decoded.1, value: "", now: decoded.9)
            token.id = decoded.0
            token.tokenHash = decoded.2
            token.hint = decoded.3
            guard let status = ClientTokenStatus(rawValue: decoded.4) else {
                throw PostgresStoreError.unreadableValue(table: "client_tokens", column: "status")
            }
            token.status = status
            token.requestCount = decoded.5
            token.promptTokens = decoded.6
            token.completionTokens = decoded.7
            token.lastUsed = decoded.8
            token.revokedAt = decoded.10
            token.allowedModels = try decoded.11.map { try JSONDecoder().decode([String].self, from: Data($0.utf8)) }
            token.rpmLimit = decoded.12
            token.tokenQuota = decoded.13
            token.expiresAt = decoded.14
            token.isInternal = decoded.15
            tokens.append(token)
        }
        return tokens
    }
}
