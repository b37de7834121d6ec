import Logging
import ServiceLifecycle
import Shared

/// Keeps the worker's `SnapshotStore` current: polls the database's generation counter (and on PostgreSQL
/// also wakes on its change notifications) and reloads when keys, key health, tokens or models changed in any
/// process of any host (CLI, admin, other workers); trades
/// rate-limit figures with the other workers through the database; and reads the objects other workers
/// recorded since its last look.
struct SnapshotRefresher: Service {
    /// Where the pool's state is read: the shared database.
    let source: any PoolStateReading
    /// Where the objects workers recorded are read.
    let objectStore: any ObjectStoring
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
    /// On PostgreSQL, notifications that wake the refresher before its next poll when something changed.
    var changes: PostgresChangeListener? = nil
    /// On PostgreSQL, the database's reach: a poll that reads the generation ends an outage this worker knew.
    var reachability: DatabaseReachability? = nil
    /// Key values already decrypted, by sealed text.
    let opened = OpenedKeys()

    /// Loads the first snapshot; the worker serves only after this succeeded.
    func loadInitial() async throws {
        store.replace(
            with: try await RoutingSnapshot.load(
                from: source, box: box, logger: logger, opened: opened, configuration: configuration))
        await refreshTokensUsed()
        await refreshObjects()
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            // One loop does the work, so two reloads never race; the poll and the notifications only wake it (a
            // wake-up while it works is kept, more are folded into it).
            let (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while (try? await Task.sleep(for: interval)) != nil { wake.yield() }
                    wake.finish()
                }
                if let changes {
                    group.addTask { await changes.run(logger: logger) { wake.yield() } }
                }
                for await _ in wakeUps {
                    await refresh()
                    await board?.exchangeRateLimits()
                    await refreshTokensUsed()
                    await refreshObjects()
                }
                group.cancelAll()
            }
        }
    }

    /// Re-reads what tokens with a quota have used (the collector counts it; it moves no generation).
    func refreshTokensUsed() async {
        guard store.snapshot.tokens.values.contains(where: { $0.limits?.tokenQuota != nil }) else { return }
        do {
            store.replaceTokensUsed(with: try await source.tokensUsed())
        } catch {
            logger.warning("token usage refresh failed: \(PostgresErrorText.line(error))")
        }
    }

    /// Takes in the objects recorded since the last look (a page at a time), reloads them all when an
    /// operator revoked or reassigned records (and at start), and drops the expired ones.
    func refreshObjects() async {
        guard let objects else { return }
        let store = objectStore
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
            logger.warning("object records refresh failed: \(PostgresErrorText.line(error))")
        }
    }

    /// Reloads the snapshot when the generation moved.
    func refresh() async {
        do {
            let generation: Int64
            if let reachability {
                // Bounded, so that an outage is known (and /healthz says degraded) with no request's help: the
                // pool's lease would wait for as long as the server is down.
                let source = self.source
                guard let read = await reachability.check(within: .seconds(2), { try await source.generation() })
                else { return }
                generation = read
            } else {
                generation = try await source.generation()
            }
            guard generation != store.snapshot.generation else { return }
            let snapshot = try await RoutingSnapshot.load(
                from: source, box: box, logger: logger, opened: opened, configuration: configuration)
            store.replace(with: snapshot)
            logger.debug(
                "routing snapshot reloaded",
                metadata: ["generation": "\(snapshot.generation)", "keys": "\(snapshot.keys.count)"])
        } catch {
            logger.warning("routing snapshot refresh failed: \(PostgresErrorText.line(error))")
        }
    }
}

extension SnapshotRefresher {
    /// A refresher reading the SQLite `database`.
    init(
        database: ProxyDatabase, box: SecretBox, store: SnapshotStore, board: KeyHealthBoard? = nil,
        configuration: ProxyConfiguration? = nil, objects: ObjectDirectory? = nil, interval: Duration, logger: Logger
    ) {
        self.init(
            source: PoolStateStore(database: database), objectStore: ObjectStore(database: database), box: box,
            store: store, board: board, configuration: configuration, objects: objects, interval: interval,
            logger: logger)
    }
}
