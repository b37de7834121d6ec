import NIOCore
import Testing

@testable import ProxyWorker

/// The receiving deadlines as a value: what is awaited, by when, and what a trickling client cannot extend.
@Suite("Receive deadline")
struct ReceiveDeadlineTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private func fresh() -> ReceiveDeadline {
        ReceiveDeadline(headerTimeout: .seconds(60), bodyTimeout: .seconds(30))
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
}
