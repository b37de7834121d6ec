import Synchronization

/// A value delivered once, by whichever side sees the event first, and awaited by any number of tasks:
/// waiting on an event instead of polling for it.
///
/// A wait with a deadline races the event against a timer in a task group; the first to deliver wins,
/// so a one-shot serves one wait and is not reused.
public final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Value, Never>])
        case delivered(Value)
    }

    private let state = Mutex(State.waiting([]))

    /// A one-shot nothing was delivered to yet.
    public init() {}

    /// Delivers `value` to every waiter, now and later; false (and nothing changes) when one was delivered already.
    @discardableResult
    public func deliver(_ value: Value) -> Bool {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, Never>]? in
            guard case .waiting(let waiters) = state else { return nil }
            state = .delivered(value)
            return waiters
        }
        guard let waiters else { return false }
        // Resumed outside the lock: a resumed task may run at once on another thread and deliver again.
        for waiter in waiters { waiter.resume(returning: value) }
        return true
    }

    /// The value delivered, if there is one yet.
    public var delivered: Value? {
        state.withLock { state in
            guard case .delivered(let value) = state else { return nil }
            return value
        }
    }

    /// The value, once delivered.
    public var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Value? in
                    switch state {
                    case .delivered(let value):
                        return value
                    case .waiting(var waiters):
                        waiters.append(continuation)
                        state = .waiting(waiters)
                        return nil
                    }
                }
                if let now { continuation.resume(returning: now) }
            }
        }
    }

    /// The value delivered within `timeout`; otherwise (or when the task is cancelled first) `fallback` is
    /// delivered and returned.
    public func value(timeout: Duration, fallback: Value) async -> Value {
        if let now = delivered { return now }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await self.value }
            group.addTask {
                // Cancelled when the value came first; then `fallback` no longer changes anything.
                try? await Task.sleep(for: timeout)
                self.deliver(fallback)
            }
            await group.next()
            group.cancelAll()
        }
        return await value
    }
}
