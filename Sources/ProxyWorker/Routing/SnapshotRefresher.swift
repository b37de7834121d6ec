import GRDB
import Logging
import ServiceLifecycle
import Shared

/// Keeps the worker's `SnapshotStore` current: polls the database's generation counter and reloads
/// when keys, key health, tokens or models changed in any process (CLI, admin, other workers); trades
/// rate-limit figures with the other workers through the database; and reads the objects other workers
/// recorded since its last look.
struct SnapshotRefresher: Service {
    let database: ProxyDatabase
    let box: SecretBox
    let store: SnapshotStore
    /// Rate-limit figures to save and take in, when the worker keeps them.
    var board: KeyHealthBoard? = nil
    /// The configuration the live settings override.
    var configuration: ProxyConfiguration? = nil
    /// The worker's objects, kept current from the `objects` table when set.
    var objects: ObjectDirectory? = nil
    let interval: Duration
    let logger: Logger
    /// Key values already decrypted, by sealed text.
    let opened = OpenedKeys()

    /// Loads the first snapshot; the worker serves only after this succeeded.
    func loadInitial() async throws {
        store.replace(
            with: try await RoutingSnapshot.load(
                from: database, box: box, logger: logger, opened: opened, configuration: configuration))
        await refreshTokensUsed()
        await refreshObjects()
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                await refresh()
                await board?.exchangeRateLimits()
                await refreshTokensUsed()
                await refreshObjects()
            }
        }
    }

    /// Re-reads what tokens with a quota have used (the collector counts it; it moves no generation).
    func refreshTokensUsed() async {
        guard store.snapshot.tokens.values.contains(where: { $0.limits?.tokenQuota != nil }) else { return }
        do {
            let figures = try await database.pool.read { db in
                var figures: [Int64: Int64] = [:]
                let rows = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT id, prompt_tokens + completion_tokens AS used FROM client_tokens
                        WHERE status = 'active' AND token_quota IS NOT NULL
                        """)
                while let row = try rows.next() { figures[row["id"]] = row["used"] }
                return figures
            }
            store.replaceTokensUsed(with: figures)
        } catch {
            logger.warning("token usage refresh failed: \(error)")
        }
    }

    /// Takes in the objects recorded since the last look (a page at a time), reloads them all when an
    /// operator revoked or reassigned records (and at start), and drops the expired ones.
    func refreshObjects() async {
        guard let objects else { return }
        let store = ObjectStore(database: database)
        let now = WallClock.nowMs()
        do {
            // The generation is read before the rows: a change made while they are read moves it again, and
            // the next look reloads once more.
            let generation = try await store.generation()
            if objects.generation != generation.generation {
                var all: [StoredObject] = []
                var position: Int64 = 0
                while true {
                    let page = try await store.objects(after: position, now: now, limit: 10_000)
                    all += page.objects
                    if page.last == position { break }
                    position = page.last
                }
                objects.reload(all, upTo: position, generation: generation)
            }
            while true {
                let before = objects.seenUpTo
                let page = try await store.objects(after: before, now: now, limit: 10_000)
                objects.merge(page.objects, upTo: page.last)
                if page.last == before { break }
            }
            objects.dropExpired(now: now)
        } catch {
            logger.warning("object records refresh failed: \(error)")
        }
    }

    /// Reloads the snapshot when the generation moved.
    func refresh() async {
        do {
            let generation = try await database.pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT generation FROM pool_generation WHERE id = 1") ?? 0
            }
            guard generation != store.snapshot.generation else { return }
            let snapshot = try await RoutingSnapshot.load(
                from: database, box: box, logger: logger, opened: opened, configuration: configuration)
            store.replace(with: snapshot)
            logger.debug(
                "routing snapshot reloaded",
                metadata: ["generation": "\(snapshot.generation)", "keys": "\(snapshot.keys.count)"])
        } catch {
            logger.warning("routing snapshot refresh failed: \(error)")
        }
    }
}
