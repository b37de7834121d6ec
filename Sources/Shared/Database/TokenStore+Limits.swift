import Foundation
import GRDB

extension TokenStore {
    /// Creates a token with `limits` (and records `audit` with it); the returned value is the only time
    /// the token is ever visible.
    public func create(
        name: String, limits: ClientTokenLimits, audit: AuditEntry? = nil
    ) async throws -> (token: ClientToken, value: String) {
        let name = try KeyStore.validName(name)
        let value = SecretFile.randomToken(prefix: ClientToken.valuePrefix)
        var record = ClientToken(name: name, value: value)
        record.apply(limits)
        record = try await database.pool.write { [record] db in
            var record = record
            try record.insert(db)
            if let audit { try AuditLog.record(audit, db) }
            return record
        }
        return (record, value)
    }

    /// The tokens operators manage (not the admin server's internal one), oldest first.
    public func listManaged() async throws -> [ClientToken] {
        try await database.pool.read { db in
            try ClientToken.filter(Column("internal") == false).order(Column("id")).fetchAll(db)
        }
    }

    /// One managed token, or nil.
    public func managed(id: Int64) async throws -> ClientToken? {
        try await database.pool.read { db in
            try ClientToken.filter(Column("internal") == false && Column("id") == id).fetchOne(db)
        }
    }

    /// Applies `change` to a managed token (and records `audit`); nil when there is none.
    public func update(
        id: Int64, audit: AuditEntry? = nil, _ change: @escaping @Sendable (inout ClientToken) -> Void
    ) async throws -> ClientToken? {
        try await database.pool.write { db in
            guard var token = try ClientToken.filter(Column("internal") == false && Column("id") == id).fetchOne(db)
            else { return nil }
            change(&token)
            try token.update(db)
            if let audit { try AuditLog.record(audit, db) }
            return token
        }
    }

    /// Revokes a managed token (and records `audit` when it was active).
    public func revoke(id: Int64, audit: AuditEntry?) async throws -> RevokeResult {
        try await database.pool.write { db in
            guard let token = try ClientToken.filter(Column("internal") == false && Column("id") == id).fetchOne(db)
            else { return .notFound }
            guard token.status == .active else { return .alreadyRevoked }
            try db.execute(
                sql: "UPDATE client_tokens SET status = 'revoked', revoked_at = ? WHERE id = ?",
                arguments: [Date(), id])
            if let audit { try AuditLog.record(audit, db) }
            return .revoked
        }
    }

    /// Makes `value` the one internal token (the admin server's, for its chat console), replacing any
    /// earlier one; returns its id.
    public func replaceInternal(value: String) async throws -> Int64 {
        var record = ClientToken(name: "admin console", value: value)
        record.isInternal = true
        return try await database.pool.write { [record] db in
            var record = record
            try db.execute(
                sql: "DELETE FROM client_tokens WHERE internal = 1 AND token_hash <> ?", arguments: [record.tokenHash])
            if let existing = try Int64.fetchOne(
                db, sql: "SELECT id FROM client_tokens WHERE token_hash = ? AND internal = 1 AND status = 'active'",
                arguments: [record.tokenHash])
            {
                return existing
            }
            try db.execute(sql: "DELETE FROM client_tokens WHERE token_hash = ?", arguments: [record.tokenHash])
            try record.insert(db)
            return record.id ?? 0
        }
    }

    /// Requests per minute: 1 to 1,000,000.
    public static func validRPMLimit(_ value: Int) throws(InputError) -> Int {
        guard (1...1_000_000).contains(value) else {
            throw InputError(field: "rpm_limit", message: "must be an integer from 1 to 1000000, or null")
        }
        return value
    }

    /// A token quota: 1 to 10^15.
    public static func validTokenQuota(_ value: Int64) throws(InputError) -> Int64 {
        guard (1...1_000_000_000_000_000).contains(value) else {
            throw InputError(field: "token_quota", message: "must be an integer from 1 to 1000000000000000, or null")
        }
        return value
    }
}

extension ClientToken {
    /// Sets every limit from `limits`.
    public mutating func apply(_ limits: ClientTokenLimits) {
        allowedModels = limits.allowedModels
        rpmLimit = limits.rpmLimit
        tokenQuota = limits.tokenQuota
        expiresAt = limits.expiresAt
    }
}
