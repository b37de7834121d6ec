import Logging
import Synchronization

/// What a process knows of the shared PostgreSQL database's reach: a call that needs it on a request's way is
/// bounded, and once one missed its bound the outage is known and no request waits on the database until a
/// check reads from it again. The log says so once per outage, and once when it is over.
public final class DatabaseReachability: Sendable {
    /// How long a request's call may wait for the database before the process serves without it.
    public let bound: Duration
    private let logger: Logger
    private let lines: Lines
    private let unreachable = Atomic<Bool>(false)
    /// Tasks waiting for an outage, by ticket; only an outage's start and those waits take the lock, so a
    /// request that only reads `isUnreachable` never does.
    private let waiting = Mutex(Waiters())

    /// What the log says when an outage starts and when it ends.
    public struct Lines: Sendable {
        /// Said once when an outage becomes known.
        public var down: String
        /// Said once when the database answers again.
        public var back: String

        /// A worker's lines: it serves through an outage with what it knows.
        public static let worker = Lines(
            down: "PostgreSQL unreachable: serving with what this worker knows",
            back: "PostgreSQL reachable again: leased rotation and shared limits resume")

        /// The admin server's lines: its API answers 503 through an outage.
        public static let admin = Lines(
            down: "PostgreSQL unreachable: the admin API answers 503 database_unavailable until it is back",
            back: "PostgreSQL reachable again: the admin API serves again")
    }

    /// Reachability with calls bounded by `bound`, logging its changes to `logger` in `lines`.
    public init(bound: Duration = .milliseconds(250), logger: Logger, lines: Lines = .worker) {
        self.bound = bound
        self.logger = logger
        self.lines = lines
    }

    /// Whether an outage is known: calls are not tried until a check reads the database again.
    public var isUnreachable: Bool { unreachable.load(ordering: .relaxed) }

    /// A call missed its bound or failed: from now on requests are served without the database.
    public func markUnreachable(_ reason: String) {
        // The flag changes under the lock, so a task that found it clear and waits is always woken.
        let woken: [CheckedContinuation<Void, Never>]? = waiting.withLock { waiters in
            guard !unreachable.exchange(true, ordering: .relaxed) else { return nil }
            defer { waiters.byTicket.removeAll() }
            return Array(waiters.byTicket.values)
        }
        guard let woken else { return }
        for continuation in woken { continuation.resume() }
        logger.warning("\(lines.down)", metadata: ["reason": "\(reason)"])
    }

    /// The database answered (a worker's refresher, the admin server's probe): requests use it again.
    public func markReachable() {
        guard unreachable.exchange(false, ordering: .relaxed) else { return }
        logger.notice("\(lines.back)")
    }

    /// Returns once an outage is known (at once when it is), or when the task is cancelled.
    public func untilUnreachable() async {
        let ticket = waiting.withLock { waiters in
            defer { waiters.next += 1 }
            return waiters.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waits = waiting.withLock { waiters in
                    guard !unreachable.load(ordering: .relaxed), !waiters.cancelled.contains(ticket) else {
                        waiters.cancelled.remove(ticket)
                        return false
                    }
                    waiters.byTicket[ticket] = continuation
                    return true
                }
                if !waits { continuation.resume() }
            }
        } onCancel: {
            let continuation = waiting.withLock { waiters in
                guard let continuation = waiters.byTicket.removeValue(forKey: ticket) else {
                    // Not waiting yet: the wait, once it starts, returns at once.
                    waiters.cancelled.insert(ticket)
                    return nil as CheckedContinuation<Void, Never>?
                }
                return continuation
            }
            continuation?.resume()
        }
        // A wait woken by the outage or by itself leaves no ticket behind.
        waiting.withLock { waiters in _ = waiters.cancelled.remove(ticket) }
    }

    /// `body`'s outcome, or nil at once when an outage is known, or nil as soon as one becomes known while `body`
    /// runs (it is then cancelled, and waited for: it must end when cancelled, as postgres-nio's pool requests
    /// do). Unlike `bounded`, a slow `body` is not cut short while the database answers others.
    public func unlessOutage<Result: Sendable>(
        _ body: @escaping @Sendable () async throws -> Result
    ) async -> Swift.Result<Result, any Error>? {
        guard !isUnreachable else { return nil }
        return await withTaskGroup(of: Swift.Result<Result, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await body()) } catch { return .failure(error) }
            }
            group.addTask {
                await self.untilUnreachable()
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// `body`'s result, or nil at once when an outage is known, or nil when `body` failed or did not finish
    /// within `bound` (the outage is then known). The caller never waits past `bound`, even for a `body` that
    /// never ends (see `awaitBounded`).
    public func bounded<Result: Sendable>(
        _ body: @escaping @Sendable () async throws -> Result
    ) async -> Result? {
        guard !isUnreachable, case .done(let result) = await attempt(within: bound, body) else { return nil }
        return result
    }

    /// Runs `body` (a cheap read) within `limit` whether or not an outage is known, and records what it met:
    /// an answer ends a known outage, a failure or no answer in time starts one. Its result, or nil.
    @discardableResult
    public func check<Result: Sendable>(
        within limit: Duration, _ body: @escaping @Sendable () async throws -> Result
    ) async -> Result? {
        guard case .done(let result) = await attempt(within: limit, body) else { return nil }
        markReachable()
        return result
    }

    /// `body`'s outcome within `limit`; a failure or no answer in time marks the outage.
    private func attempt<Result: Sendable>(
        within limit: Duration, _ body: @escaping @Sendable () async throws -> Result
    ) async -> BoundedOutcome<Result> {
        let outcome = await awaitBounded(limit, body)
        switch outcome {
        case .done: break
        case .failed(let error): markUnreachable(PostgresErrorText.line(error))
        case .timedOut: markUnreachable("no answer within \(limit)")
        }
        return outcome
    }

    /// The tasks in `untilUnreachable`, and the tickets cancelled before their wait began.
    private struct Waiters {
        var next = 0
        var byTicket: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelled: Set<Int> = []
    }
}
