import GRDB

/// What the secret check reads and writes, and what `rotate-secret` seals again, the same on every engine:
/// `SecretCheckStore` (SQLite) and `PostgresSecretCheckStore`, held to one behaviour by suites run against both.
public protocol SecretCheckStoring: Sendable {
    /// The stored check (a value sealed by `SecretBox`), or nil before the first start that stored one.
    func storedCheck() async throws -> String?
    /// Every stored key's sealed value.
    func sealedKeyValues() async throws -> [String]
    /// Stores `sealed` as the check unless one is stored already; returns the check stored afterwards (another
    /// host's, when it stored first).
    func storeCheckIfAbsent(_ sealed: String, now: Int64) async throws -> String
    /// Seals under `box`'s newest secret every key (and the check) sealed under another of its secrets, in one
    /// transaction; throws `SecretRotation.Failure` without a change when one opens under none.
    func reseal(under box: SecretBox) async throws -> SecretRotation.Pass
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

    public func reseal(under box: SecretBox) async throws -> SecretRotation.Pass {
        try await database.pool.write { db in
            var pass = SecretRotation.Pass(resealed: 0, keys: 0)
            for row in try Row.fetchAll(db, sql: "SELECT id, key_value FROM keys ORDER BY id") {
                let id: Int64 = row["id"]
                pass.keys += 1
                guard let sealed = try SecretRotation.resealed(row["key_value"], key: id, under: box) else { continue }
                // updated_at stays: the key itself did not change.
                try db.execute(sql: "UPDATE keys SET key_value = ? WHERE id = ?", arguments: [sealed, id])
                pass.resealed += 1
            }
            if let check = try String.fetchOne(db, sql: "SELECT sealed_value FROM secret_check WHERE id = 1"),
                let sealed = try SecretRotation.resealed(check, key: nil, under: box)
            {
                try db.execute(sql: "UPDATE secret_check SET sealed_value = ? WHERE id = 1", arguments: [sealed])
            }
            return pass
        }
    }
}
