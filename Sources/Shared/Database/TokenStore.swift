import Foundation
import GRDB

/// Creates, lists and revokes client tokens in the shared database.
public struct TokenStore: Sendable {
    /// The shared database.
    public let database: ProxyDatabase

    /// A store over `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    /// Creates a token; the returned value is the only time it is ever visible.
    public func create(name: String) async throws -> (token: ClientToken, value: String) {
        let name = try KeyStore.validName(name)
        let value = SecretFile.randomToken(prefix: ClientToken.valuePrefix)
        var record = ClientToken(name: name, value: value)
        record = try await database.pool.write { [record] db in
            var record = record
            try record.insert(db)
            return record
        }
        return (record, value)
    }

    /// Every token, oldest first.
    public func list() async throws -> [ClientToken] {
        try await database.pool.read { db in try ClientToken.order(Column("id")).fetchAll(db) }
    }

    /// Outcome of a revocation.
    public enum RevokeResult: Sendable, Equatable {
        /// Revoked now.
        case revoked
        /// Was revoked before.
        case alreadyRevoked
        /// No token has that id.
        case notFound
    }

    /// Revokes a token: requests presenting it get 401 from then on.
    public func revoke(id: Int64) async throws -> RevokeResult {
        try await database.pool.write { db in
            guard let token = try ClientToken.fetchOne(db, key: id) else { return .notFound }
            guard token.status == .active else { return .alreadyRevoked }
            try db.execute(
                sql: "UPDATE client_tokens SET status = 'revoked', revoked_at = ? WHERE id = ?",
                arguments: [Date(), id])
            return .revoked
        }
    }
}
