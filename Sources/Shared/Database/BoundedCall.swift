import NIOCore
import Synchronization

/// How a call awaited for at most a bound ended.
public enum BoundedOutcome<Result: Sendable>: Sendable {
    /// It returned in time.
    case done(Result)
    /// It threw in time, or the caller was cancelled.
    case failed(any Error)
    /// It had not ended when the bound passed.
    case timedOut
}

/// Runs `body` in a task of its own and waits for it at most `bound` (nil: no time limit). Unlike a task group, which waits for its
/// children, this returns at the bound even when `body` never ends: postgres-nio's query written to a connection
/// whose channel closed under it is never answered, and its cancellation does nothing. On time-out `body` is
/// cancelled and left to end on its own.
///
/// With `closed` (a connection's close future), the call also ends, as failed with `ConnectionClosed`, once that
/// connection closes: a query written to it as it closed is never answered.
public func awaitBounded<Result: Sendable>(
    _ bound: Duration?, orUntil closed: EventLoopFuture<Void>? = nil,
    _ body: @escaping @Sendable () async throws -> Result
) async -> BoundedOutcome<Result> {
    let call = BoundedCall<Result>()
    closed?.whenComplete { _ in call.finish(.failed(ConnectionClosed())) }
    return await withTaskCancellationHandler {
        await withCheckedContinuation { continuation in
            call.start(continuation, bound: bound, body)
        }
    } onCancel: {
        call.finish(.failed(CancellationError()))
    }
}

/// The connection a bounded call ran on closed before the call ended.
public struct ConnectionClosed: Error, CustomStringConvertible {
    public var description: String { "the database connection closed" }
}

/// One bounded call: the waiting caller, resumed once by whichever of the work, the timer or the caller's
/// cancellation comes first; the other two are cancelled.
private final class BoundedCall<Result: Sendable>: Sendable {
    private struct State {
        var waiter: CheckedContinuation<BoundedOutcome<Result>, Never>?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        /// Set once an outcome is known.
        var ended = false
        /// An outcome known before the caller waited (its cancellation, or a connection already closed).
        var early: BoundedOutcome<Result>?
    }

    private let state = Mutex(State())

    func start(
        _ continuation: CheckedContinuation<BoundedOutcome<Result>, Never>, bound: Duration?,
        _ body: @escaping @Sendable () async throws -> Result
    ) {
        let known = state.withLock { state -> BoundedOutcome<Result>? in
            guard !state.ended else { return state.early ?? .failed(CancellationError()) }
            state.waiter = continuation
            return nil
        }
        if let known {
            continuation.resume(returning: known)
            return
        }
        let work = Task {
            do { self.finish(.done(try await body())) } catch { self.finish(.failed(error)) }
        }
        let timer = bound.map { bound in
            Task {
                // A cancelled sleep means the work ended first.
                guard (try? await Task.sleep(for: bound)) != nil else { return }
                self.finish(.timedOut)
            }
        }
        let endedMeanwhile = state.withLock { state in
            state.work = work
            state.timer = timer
            return state.ended
        }
        if endedMeanwhile {
            work.cancel()
            timer?.cancel()
        }
    }

    /// Resumes the caller with `outcome` unless it was resumed already, and cancels what still runs.
    func finish(_ outcome: BoundedOutcome<Result>) {
        let (waiter, work, timer) = state.withLock { state in
            if !state.ended, state.waiter == nil { state.early = outcome }
            state.ended = true
            defer { (state.waiter, state.work, state.timer) = (nil, nil, nil) }
            return (state.waiter, state.work, state.timer)
        }
        guard let waiter else { return }
        work?.cancel()
        timer?.cancel()
        waiter.resume(returning: outcome)
    }
}
