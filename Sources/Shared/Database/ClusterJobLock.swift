import Logging
import PostgresNIO

/// Runs a cluster-wide job (the prober, the log retention) on one host at a time: on PostgreSQL the job runs
/// while this process holds `pg_try_advisory_lock(key)` on a session of its own, and when that session ends
/// (its host died, the server restarted) another host's waiting process takes the lock over within `retry`.
/// On SQLite (one host) the job simply runs.
public struct ClusterJobLock: Sendable {
    /// The database holding the lock; nil on SQLite.
    let database: PostgresProxyDatabase?
    /// The advisory lock's key.
    let key: Int64
    /// The job's name, for the log.
    let name: String
    /// How often a process that does not hold the lock asks again, and waits after a failed connection.
    var retry: Duration = .seconds(1)

    /// The advisory lock key of the key prober ("op-probe" in ASCII).
    public static let proberKey: Int64 = 0x6f70_2d70_726f_6265
    /// The advisory lock key of the request log's retention ("op-retai" in ASCII).
    public static let retentionKey: Int64 = 0x6f70_2d72_6574_6169

    /// The lock `key` named `name` in `stores`' database.
    public init(stores: StoreSet, key: Int64, name: String, retry: Duration = .seconds(1)) {
        database = stores.postgresql
        self.key = key
        self.name = name
        self.retry = retry
    }

    /// Runs `job` while the lock is held, until `job` returns or the task is cancelled; `job` is cancelled when the
    /// lock's session ends, and run again once the lock is held again.
    public func whileHeld(logger: Logger, _ job: @escaping @Sendable () async throws -> Void) async throws {
        guard let database else { return try await job() }
        var unreachable = false
        while !Task.isCancelled {
            let connection: PostgresConnection
            do {
                connection = try await database.dedicatedConnection(id: 1)
                unreachable = false
            } catch {
                // Said once per outage, not once per attempt.
                if !unreachable {
                    logger.warning(
                        "cluster job \(name): cannot reach PostgreSQL; will retry: \(PostgresErrorText.line(error))")
                }
                unreachable = true
                try await Task.sleep(for: retry)
                continue
            }
            let finished: Bool
            do {
                try await acquire(on: connection, logger: logger)
                logger.notice("cluster job \(name) runs on this host")
                finished = await runUntilSessionEnds(job, connection: connection)
            } catch {
                try? await connection.close()
                if Task.isCancelled || error is CancellationError { return }
                logger.warning("cluster job \(name): \(error); will retry")
                try await Task.sleep(for: retry)
                continue
            }
            if finished { return }
            logger.warning("cluster job \(name): its PostgreSQL session ended; waiting for the lock again")
        }
    }

    /// Waits until `connection`'s session holds the lock (another host may hold it for as long as it lives).
    private func acquire(on connection: PostgresConnection, logger: Logger) async throws {
        while true {
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(key))", logger: logger)
            for try await held in rows.decode(Bool.self) where held { return }
            try await Task.sleep(for: retry)
        }
    }

    /// Runs `job` beside a watch on `connection`: true when `job` returned (the connection is then closed, which
    /// releases the lock), false when the session ended first (`job` is then cancelled).
    private func runUntilSessionEnds(
        _ job: @escaping @Sendable () async throws -> Void, connection: PostgresConnection
    ) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                // The job's own failures are its to log; here only whether it ended matters.
                try? await job()
                return true
            }
            group.addTask {
                try? await connection.closeFuture.get()
                return false
            }
            let first = await group.next() ?? true
            group.cancelAll()
            // The watch ends only when the connection does.
            try? await connection.close()
            while await group.next() != nil {}
            return first
        }
    }
}
