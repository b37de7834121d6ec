import NIOCore
import Testing

@testable import ProxyWorker

/// The receiving deadlines as a value: what is awaited, by when, and what a trickling client cannot extend; and
/// the keep-alive wait for the next request.
@Suite("Receive deadline")
struct ReceiveDeadlineTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private func fresh() -> ReceiveDeadline {
        ReceiveDeadline(headerTimeout: .seconds(60), bodyTimeout: .seconds(30), keepAliveTimeout: .seconds(75))
    }

    @Test("nothing is awaited before a head starts or after a request is complete")
    func nothingAwaited() {
        var deadline = fresh()
        #expect(deadline.check(at: start) == .nothingAwaited)
        deadline.headStarted(at: start)
        deadline.headReceived()
        deadline.requestReceived()
        #expect(deadline.check(at: start + .hours(5)) == .nothingAwaited)
    }

    @Test("the head is due a header timeout after it started, however often bytes of it arrive")
    func headNotExtended() {
        var deadline = fresh()
        deadline.headStarted(at: start)
        for second in 1...59 { deadline.headStarted(at: start + .seconds(Int64(second))) }
        #expect(deadline.check(at: start + .seconds(59)) == .wait(until: start + .seconds(60)))
        #expect(deadline.check(at: start + .seconds(60)) == .expired(.head))
    }

    @Test("body progress is ignored while the head is awaited")
    func bodyProgressBeforeHead() {
        var deadline = fresh()
        deadline.headStarted(at: start)
        deadline.bodyProgress(at: start + .seconds(50))
        #expect(deadline.check(at: start + .seconds(60)) == .expired(.head))
    }

    @Test("a body may stay silent a body timeout from its last bytes")
    func bodySilence() {
        var deadline = fresh()
        deadline.headStarted(at: start)
        deadline.headReceived()
        deadline.bodyProgress(at: start + .seconds(1))
        deadline.bodyProgress(at: start + .seconds(20))
        #expect(deadline.check(at: start + .seconds(49)) == .wait(until: start + .seconds(50)))
        #expect(deadline.check(at: start + .seconds(50)) == .expired(.body))
    }

    @Test("the next request's head is due from its own start, not from the previous one's")
    func nextHead() {
        var deadline = fresh()
        deadline.headStarted(at: start)
        deadline.headReceived()
        deadline.requestReceived()
        let later = start + .seconds(300)
        deadline.headStarted(at: later)
        #expect(deadline.check(at: later + .seconds(59)) == .wait(until: later + .seconds(60)))
        #expect(deadline.check(at: later + .seconds(60)) == .expired(.head))
    }

    @Test("after an answer ends the next request is awaited a keep-alive timeout, then the connection is idle too long")
    func keepAlive() {
        var deadline = fresh()
        deadline.headStarted(at: start)
        deadline.headReceived()
        deadline.requestReceived()
        deadline.answerEnded(at: start + .seconds(5))
        #expect(deadline.phase == .idle)
        #expect(deadline.check(at: start + .seconds(79)) == .wait(until: start + .seconds(80)))
        #expect(deadline.check(at: start + .seconds(80)) == .expired(.idle))
    }

    @Test("bytes of the next request replace the keep-alive wait with the head's deadline, earlier or later")
    func headAfterIdle() {
        var deadline = fresh()
        deadline.answerEnded(at: start)
        deadline.headStarted(at: start + .seconds(70))
        #expect(deadline.check(at: start + .seconds(129)) == .wait(until: start + .seconds(130)))
        #expect(deadline.check(at: start + .seconds(130)) == .expired(.head))
    }

    @Test("an answer sent before its body ended leaves the body's deadline; the keep-alive wait starts after it")
    func answeredBeforeBodyEnded() {
        var deadline = fresh()
        deadline.headStarted(at: start)
        deadline.headReceived()
        deadline.bodyProgress(at: start + .seconds(1))
        deadline.answerEnded(at: start + .seconds(2))
        #expect(deadline.check(at: start + .seconds(31)) == .expired(.body))
        deadline.requestReceived()
        deadline.answerEnded(at: start + .seconds(3))
        #expect(deadline.check(at: start + .seconds(78)) == .expired(.idle))
    }
}
