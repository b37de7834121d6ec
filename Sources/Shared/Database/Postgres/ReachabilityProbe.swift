import ServiceLifecycle

/// Checks the shared PostgreSQL database with `SELECT 1` through the process's pool every `interval`, each
/// check bounded by `limit`: an outage is known within `interval + limit` of its start and its end is known
/// at the first check that answers (once the pool has connected again), with no request's help.
public struct ReachabilityProbe: Service {
    /// What the checks mark.
    public let reachability: DatabaseReachability
    /// The database checked.
    public let database: PostgresProxyDatabase
    /// Time between two checks.
    public var interval: Duration = .milliseconds(500)
    /// Longest a check may wait for its answer.
    public var limit: Duration = .milliseconds(1500)

    /// A probe of `database` marking `reachability`.
    public init(reachability: DatabaseReachability, database: PostgresProxyDatabase) {
        self.reachability = reachability
        self.database = database
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await checkOnce()
                guard (try? await Task.sleep(for: interval)) != nil else { return }
            }
        }
    }

    /// One check now: true when the database answered within `limit`.
    @discardableResult
    public func checkOnce() async -> Bool {
        let database = self.database
        let answered = await reachability.check(within: limit) {
            try await database.connection { connection in
                for try await _ in try await connection.query("SELECT 1", logger: database.logger) {}
            }
        }
        return answered != nil
    }
}
