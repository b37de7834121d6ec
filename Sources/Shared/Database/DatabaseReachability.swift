import Logging
import Synchronization

/// What a worker knows of the shared PostgreSQL database's reach: a call that needs it on a request's way is
/// bounded, and once one missed its bound the outage is known and no request waits on the database until the
/// worker's refresher reads from it again. The log says so once per outage, and once when it is over.
public final class DatabaseReachability: Sendable {
    /// How long a request's call may wait for the database before the worker serves without it.
    public let bound: Duration
    private let logger: Logger
    private let unreachable = Atomic<Bool>(false)

    /// Reachability with calls bounded by `bound`, logging its changes to `logger`.
    public init(bound: Duration = .milliseconds(250), logger: Logger) {
        self.bound = bound
        self.logger = logger
    }

    /// Whether an outage is known: calls are not tried until the refresher reads the database again.
    public var isUnreachable: Bool { unreachable.load(ordering: .relaxed) }

    /// A call missed its bound or failed: from now on requests are served with what the worker knows.
    public func markUnreachable(_ reason: String) {
        guard !unreachable.exchange(true, ordering: .relaxed) else { return }
        logger.warning(
            "PostgreSQL unreachable: serving with what this worker knows", metadata: ["reason": "\(reason)"])
    }

    /// The database answered (the refresher's poll): requests use it again.
    public func markReachable() {
        guard unreachable.exchange(false, ordering: .relaxed) else { return }
        logger.notice("PostgreSQL reachable again: leased rotation and shared limits resume")
    }

    /// `body`'s result, or nil at once when an outage is known, or nil when `body` failed or did not finish
    /// within `bound` (the outage is then known). The caller never waits past `bound`, even for a `body` that
    /// never ends (see `awaitBounded`).
    public func bounded<Result: Sendable>(
        _ body: @escaping @Sendable () async throws -> Result
    ) async -> Result? {
        guard !isUnreachable else { return nil }
        switch await awaitBounded(bound, body) {
        case .done(let result):
            return result
        case .failed(let error):
            markUnreachable(PostgresErrorText.line(error))
            return nil
        case .timedOut:
            markUnreachable("no answer within \(bound)")
            return nil
        }
    }
}
