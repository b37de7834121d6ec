import GRDB

/// What the secret check reads and writes, the same on every engine: `SecretCheckStore` (SQLite) and
/// `PostgresSecretCheckStore`, held to one behaviour by one suite run against both.
public protocol SecretCheckStoring: Sendable {
    /// The stored check (a value sealed by `SecretBox`), or nil before the first start that stored one.
    func storedCheck() async throws -> String?
    /// Every stored key's sealed value.
    func sealedKeyValues() async throws -> [String]
    /// Stores `sealed` as the check unless one is stored already; returns the check stored afterwards (another
    /// host's, when it stored first).
    func storeCheckIfAbsent(_ sealed: String, now: Int64) async throws -> String
}

/// The secret check on SQLite.
public struct SecretCheckStore: SecretCheckStoring {
    /// The shared database.
    public let database: ProxyDatabase

    /// A store over `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    public func storedCheck() async throws -> String? {
        try await database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT sealed_value FROM secret_check WHERE id = 1")
        }
    }

    public func sealedKeyValues() async throws -> [String] {
        try await database.pool.read { db in try String.fetchAll(db, sql: "SELECT key_value FROM keys ORDER BY id") }
    }

    public func storeCheckIfAbsent(_ sealed: String, now: Int64) async throws -> String {
        try await database.pool.write { db in
            try db.execute(
                sql:
                    "INSERT INTO secret_check (id, sealed_value, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING",
                arguments: [sealed, now])
            return try String.fetchOne(db, sql: "SELECT sealed_value FROM secret_check WHERE id = 1") ?? sealed
        }
    }
}
