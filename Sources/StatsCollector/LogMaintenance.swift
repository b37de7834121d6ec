import Foundation
import GRDB
import GRDBSQLite
import Logging
import ServiceLifecycle
import Shared

/// Keeps the database in shape while the service runs: prunes the request log, the chat history and the
/// refused-request counts past the retention (the hourly aggregates stay), drops the records of objects past
/// their own retention, and checkpoints the WAL so it does not grow without bound.
///
/// SQLite's own automatic checkpoints copy the WAL into the database but cannot start the WAL over while
/// readers are using it; with a reader open at every moment (overlapping read transactions) it grows
/// without end (measured: 2.7 GB after 2 minutes of load). A TRUNCATE checkpoint stops new writes, waits
/// until the readers of the moment are done (new readers then read the database file), and empties the
/// WAL. The wait holds back every writer, so it starts short and doubles after each failed attempt (a
/// reader that stays longer), up to `longestCheckpointWait`; success makes it short again.
struct LogMaintenance: Service {
    /// Where the log is pruned.
    let store: any UsageStoring
    /// The SQLite database whose WAL is checkpointed; nil on PostgreSQL, which keeps its own log in shape.
    let checkpointed: ProxyDatabase?
    /// Where expired object records are dropped.
    let objects: any ObjectStoring
    let retentionDays: Int
    let logger: Logger
    /// Where the pruning runs on PostgreSQL: on the one host holding this lock (nil: here, as on SQLite).
    var cluster: ClusterJobLock? = nil
    /// How often the WAL's size is looked at.
    var checkpointInterval: Duration = .seconds(2)
    /// WAL size from which a TRUNCATE checkpoint is made.
    var checkpointAboveBytes = 64 * 1024 * 1024
    /// How long the first checkpoint attempt waits for readers and writers.
    var checkpointWait: Duration = .milliseconds(250)
    /// The longest wait, after repeated failures.
    var longestCheckpointWait: Duration = .seconds(4)
    /// How often the log is pruned (also once at start).
    var pruneInterval: Duration = .seconds(600)

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            guard let database = checkpointed else {
                // PostgreSQL keeps its own log in shape: only the pruning is left, one host for the cluster.
                guard let cluster else { return try await pruneEvery() }
                return try await cluster.whileHeld(logger: logger) { try await pruneEvery() }
            }
            try await maintainSQLite(database)
        }
    }

    /// Prunes at start and every `pruneInterval`, until cancelled.
    private func pruneEvery() async throws {
        while true {
            await pruneLogging()
            await pruneObjects()
            try await Task.sleep(for: pruneInterval)
        }
    }

    /// Prunes on schedule and checkpoints the WAL of the SQLite `database`, until cancelled.
    private func maintainSQLite(_ database: ProxyDatabase) async throws {
        var nextPrune = ContinuousClock.now
        var wait = checkpointWait
        while true {
            if ContinuousClock.now >= nextPrune {
                nextPrune = ContinuousClock.now + pruneInterval
                await pruneLogging()
                await pruneObjects()
            }
            switch checkpointIfLarge(database, wait: wait) {
            case true?: wait = checkpointWait
            case false?: wait = min(wait * 2, longestCheckpointWait)
            case nil: break
            }
            try await Task.sleep(for: checkpointInterval)
        }
    }

    private func pruneLogging() async {
        let cutoff = Int64(Date().timeIntervalSince1970 * 1000) - Int64(retentionDays) * 86_400_000
        do {
            let removed = try await store.prune(olderThan: cutoff, chunk: 5000)
            if removed > 0 { logger.info("request log pruned", metadata: ["rows": "\(removed)"]) }
        } catch {
            logger.warning("request log pruning failed; will retry: \(PostgresErrorText.line(error))")
        }
    }

    /// Deletes request-log and chat-history rows older than `cutoff` (Unix milliseconds), a few thousand per
    /// transaction so that the write lock is never held long; returns how many.
    static func prune(_ database: ProxyDatabase, olderThan cutoff: Int64, chunk: Int = 5000) async throws -> Int {
        var total = 0
        for table in ["usage_log", "chat_history"] {
            while true {
                let removed = try await database.pool.write { db in
                    try db.execute(
                        sql: "DELETE FROM \(table) WHERE id IN (SELECT id FROM \(table) WHERE ts < ? LIMIT ?)",
                        arguments: [cutoff, chunk])
                    return db.changesCount
                }
                total += removed
                if removed < chunk { break }
            }
        }
        // The refused-request counts are kept as long as the log (a few rows per minute at most).
        total += try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM refused_requests WHERE minute < ?", arguments: [cutoff])
            return db.changesCount
        }
        return total
    }

    private func pruneObjects() async {
        do {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let removed = try await objects.deleteExpired(now: now)
            if removed > 0 { logger.info("expired object records dropped", metadata: ["rows": "\(removed)"]) }
        } catch {
            logger.warning("object record expiry failed; will retry: \(PostgresErrorText.line(error))")
        }
    }

    /// Empties the WAL when it has grown past `checkpointAboveBytes`; nil when it had not, else whether it
    /// succeeded within `wait`.
    private func checkpointIfLarge(_ database: ProxyDatabase, wait: Duration) -> Bool? {
        let wal = database.pool.path + "-wal"
        guard let size = try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int,
            size > checkpointAboveBytes
        else { return nil }
        switch Self.truncateWAL(databasePath: database.pool.path, wait: wait) {
        case .success:
            logger.debug("WAL checkpointed", metadata: ["wal.bytes.before": "\(size)", "wait": "\(wait)"])
            return true
        case .failure(let error):
            logger.debug("WAL checkpoint deferred: \(PostgresErrorText.line(error))", metadata: ["wait": "\(wait)"])
            return false
        }
    }

    /// Why a checkpoint did not complete.
    struct CheckpointError: Error, CustomStringConvertible {
        /// SQLite's message.
        let description: String
    }

    /// A TRUNCATE checkpoint on a connection of its own, waiting at most `wait` for other connections.
    static func truncateWAL(databasePath: String, wait: Duration) -> Result<Void, CheckpointError> {
        var handle: OpaquePointer?
        defer { sqlite3_close_v2(handle) }
        guard sqlite3_open_v2(databasePath, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else {
            return .failure(CheckpointError(description: String(cString: sqlite3_errmsg(handle))))
        }
        sqlite3_busy_timeout(handle, Int32(wait.inMilliseconds))
        // A connection learns that the database is in WAL mode when it first reads it; until then a
        // checkpoint does nothing and reports success.
        guard sqlite3_exec(handle, "SELECT COUNT(*) FROM sqlite_master", nil, nil, nil) == SQLITE_OK else {
            return .failure(CheckpointError(description: String(cString: sqlite3_errmsg(handle))))
        }
        var logFrames: Int32 = 0
        var copiedFrames: Int32 = 0
        let code = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, &logFrames, &copiedFrames)
        guard code == SQLITE_OK else {
            return .failure(CheckpointError(description: String(cString: sqlite3_errmsg(handle))))
        }
        return .success(())
    }
}
