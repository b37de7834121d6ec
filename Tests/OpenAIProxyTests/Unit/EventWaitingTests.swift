import EventWaiting
import HTTPServing
import Testing

/// Waiting on events instead of polling: the one-shot and the connection count's wait for zero.
@Suite("Event waiting", .timeLimit(.minutes(1)))
struct EventWaitingTests {
    @Test("a one-shot wakes every waiter with the first value delivered, and later deliveries change nothing")
    func oneShot() async throws {
        let shot = OneShot<Int>()
        #expect(shot.delivered == nil)
        let waiters = (0..<3).map { _ in Task { await shot.value } }
        #expect(shot.deliver(7))
        #expect(!shot.deliver(8))
        for waiter in waiters { #expect(await waiter.value == 7) }
        #expect(await shot.value == 7)
        #expect(shot.delivered == 7)
    }

    @Test("a wait with a deadline an hour away ends with the event; without one it ends with the fallback")
    func deadlineRace() async throws {
        let shot = OneShot<String>()
        let waiting = Task { await shot.value(timeout: .seconds(3600), fallback: "timed out") }
        shot.deliver("event")
        #expect(await waiting.value == "event")

        let silent = OneShot<String>()
        #expect(await silent.value(timeout: .milliseconds(20), fallback: "timed out") == "timed out")
        #expect(!silent.deliver("too late"), "the fallback was delivered: the one-shot is spent")
    }

    @Test("cancelling a wait delivers the fallback at once, whatever the deadline")
    func cancelledWait() async throws {
        let shot = OneShot<Bool>()
        let waiting = Task { await shot.value(timeout: .seconds(3600), fallback: false) }
        waiting.cancel()
        #expect(await waiting.value == false)
        #expect(shot.delivered == false)
    }

    @Test("a drain's wait for zero connections ends with the last close, with time left to its deadline")
    func connectionsReachZero() async throws {
        let cap = ConnectionCap(limit: 10)
        #expect(await cap.waitUntilEmpty(timeout: .seconds(3600)), "none open: at once")
        cap.opened()
        cap.opened()
        let drained = Task { await cap.waitUntilEmpty(timeout: .seconds(3600)) }
        cap.closed()
        cap.closed()
        #expect(await drained.value)
        cap.opened()
        #expect(!(await cap.waitUntilEmpty(timeout: .milliseconds(20))), "still open at the deadline")
        cap.closed()
        #expect(cap.current == 0)
    }
}
