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
        // Plain values out of the transaction (GRDB's Row is not Sendable), so the read runs off this thread.
        let (generation, sealedKeys, tokenRows) = try await database.pool.read { db in
            (
                try Int64.fetchOne(db, sql: "SELECT generation FROM pool_generation WHERE id = 1") ?? 0,
                try Row.fetchAll(
                    db, sql: "SELECT id, key_hint, key_value FROM keys WHERE status = 'active' ORDER BY id"
                ).map { row -> (id: Int64, hint: String, sealed: String) in
                    (row["id"], row["key_hint"], row["key_value"])
                },
                try Row.fetchAll(db, sql: "SELECT id, token_hash FROM client_tokens WHERE status = 'active'")
                    .map { row -> (hash: String, id: Int64) in (row["token_hash"], row["id"]) }
            )
        }
        var keys: [RoutableKey] = []
        for key in sealedKeys {
            do {
                keys.append(RoutableKey(id: key.id, hint: key.hint, value: try box.open(key.sealed)))
            } catch {
                logger.error("key skipped: \(error)", metadata: ["key.id": "\(key.id)", "key.hint": "\(key.hint)"])
            }
        }
        var tokens: [String: Int64] = [:]
        for token in tokenRows { tokens[token.hash] = token.id }
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
