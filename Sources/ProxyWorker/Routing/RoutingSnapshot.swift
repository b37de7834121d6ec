import GRDB
import Logging
import Shared
import Synchronization

/// What a worker routes on, held in memory: active keys (decrypted) and active client tokens.
struct RoutingSnapshot: Sendable {
    /// Database generation this snapshot was read at.
    var generation: Int64
    /// Active keys, sorted by id.
    var keys: [RoutableKey]
    /// SHA-256 hex of each active client token → its id.
    var tokens: [String: Int64]

    static let empty = RoutingSnapshot(generation: -1, keys: [], tokens: [:])

    /// Reads a consistent snapshot in one transaction; keys that do not open with `box` are skipped and logged.
    static func load(from database: ProxyDatabase, box: SecretBox, logger: Logger) async throws -> RoutingSnapshot {
        let (generation, keyRows, tokenRows) = try await database.pool.read { db in
            (
                try Int64.fetchOne(db, sql: "SELECT generation FROM pool_generation WHERE id = 1") ?? 0,
                try Row.fetchAll(
                    db, sql: "SELECT id, key_hint, key_value FROM keys WHERE status = 'active' ORDER BY id"),
                try Row.fetchAll(db, sql: "SELECT id, token_hash FROM client_tokens WHERE status = 'active'")
            )
        }
        var keys: [RoutableKey] = []
        for row in keyRows {
            let id: Int64 = row["id"]
            let hint: String = row["key_hint"]
            do {
                keys.append(RoutableKey(id: id, hint: hint, value: try box.open(row["key_value"])))
            } catch {
                logger.error("key skipped: \(error)", metadata: ["key.id": "\(id)", "key.hint": "\(hint)"])
            }
        }
        var tokens: [String: Int64] = [:]
        for row in tokenRows { tokens[row["token_hash"]] = row["id"] }
        return RoutingSnapshot(generation: generation, keys: keys, tokens: tokens)
    }
}

/// The current snapshot, swapped atomically by the refresher and read by every request.
final class SnapshotStore: Sendable {
    private let current = Mutex(RoutingSnapshot.empty)

    /// The snapshot in force.
    var snapshot: RoutingSnapshot { current.withLock { $0 } }

    /// Replaces the snapshot.
    func replace(with snapshot: RoutingSnapshot) {
        current.withLock { $0 = snapshot }
    }
}
