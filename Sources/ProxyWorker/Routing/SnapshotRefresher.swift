import GRDB
import Logging
import ServiceLifecycle
import Shared

/// Keeps the worker's `SnapshotStore` current: polls the database's generation counter and reloads
/// when keys, tokens or models changed in any process (CLI, admin, other workers).
struct SnapshotRefresher: Service {
    let database: ProxyDatabase
    let box: SecretBox
    let store: SnapshotStore
    let interval: Duration
    let logger: Logger

    /// Loads the first snapshot; the worker serves only after this succeeded.
    func loadInitial() async throws {
        store.replace(with: try await RoutingSnapshot.load(from: database, box: box, logger: logger))
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                await refresh()
            }
        }
    }

    /// Reloads the snapshot when the generation moved.
    func refresh() async {
        do {
            let generation = try await database.pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT generation FROM pool_generation WHERE id = 1") ?? 0
            }
            guard generation != store.snapshot.generation else { return }
            let snapshot = try await RoutingSnapshot.load(from: database, box: box, logger: logger)
            store.replace(with: snapshot)
            logger.debug(
                "routing snapshot reloaded",
                metadata: ["generation": "\(snapshot.generation)", "keys": "\(snapshot.keys.count)"])
        } catch {
            logger.warning("routing snapshot refresh failed: \(error)")
        }
    }
}
