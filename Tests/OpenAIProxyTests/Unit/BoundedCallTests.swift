import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import Shared

/// `awaitBounded`: the caller gets an outcome at the bound, at a connection's close or at its own cancellation,
/// even when the call itself never ends.
@Suite("Bounded call")
struct BoundedCallTests {
    /// A call that ends only when the test opens the gate, cancelled or not (as a query written to a closed
    /// channel never ends).
    final class Gate: Sendable {
        private let waiter = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let opened = Mutex(false)

        func wait() async {
            await withCheckedContinuation { continuation in
                let open = opened.withLock { opened in
                    if !opened { waiter.withLock { $0 = continuation } }
                    return opened
                }
                if open { continuation.resume() }
            }
        }

        func open() {
            let waiting = opened.withLock { opened in
                opened = true
                return waiter.withLock { $0.take() }
            }
            waiting?.resume()
        }
    }

    struct Refused: Error {}

    @Test("a call that returns or throws in time gives its result or its error")
    func inTime() async {
        guard case .done(let value) = await awaitBounded(.seconds(30), { 42 }) else {
            Issue.record("not done")
            return
        }
        #expect(value == 42)
        guard case .failed(let error) = await awaitBounded(.seconds(30), { () throws -> Int in throw Refused() })
        else {
            Issue.record("not failed")
            return
        }
        #expect(error is Refused)
    }

    @Test("a call that never ends, not even when cancelled, times out at the bound")
    func neverEnds() async {
        let gate = Gate()
        defer { gate.open() }
        let outcome = await awaitBounded(.milliseconds(50)) { await gate.wait() }
        guard case .timedOut = outcome else {
            Issue.record("expected a time-out, got \(outcome)")
            return
        }
    }

    @Test("with no time limit, the connection's close ends a call that never ends")
    func closedConnection() async {
        let closed = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let gate = Gate()
        defer { gate.open() }
        async let outcome = awaitBounded(nil, orUntil: closed.futureResult) { await gate.wait() }
        closed.succeed(())
        guard case .failed(let error) = await outcome else {
            Issue.record("expected a failure")
            return
        }
        #expect(error is ConnectionClosed)
    }

    @Test("a connection already closed ends the call before it waits")
    func closedBefore() async {
        let closed = MultiThreadedEventLoopGroup.singleton.next().makeSucceededVoidFuture()
        let gate = Gate()
        defer { gate.open() }
        guard case .failed(let error) = await awaitBounded(nil, orUntil: closed, { await gate.wait() }) else {
            Issue.record("expected a failure")
            return
        }
        #expect(error is ConnectionClosed)
    }

    @Test("the caller's cancellation ends its wait for a call that never ends")
    func callerCancelled() async {
        let gate = Gate()
        defer { gate.open() }
        let waiting = Task { await awaitBounded(nil) { await gate.wait() } }
        waiting.cancel()
        guard case .failed(let error) = await waiting.value else {
            Issue.record("expected a failure")
            return
        }
        #expect(error is CancellationError)
    }
}
