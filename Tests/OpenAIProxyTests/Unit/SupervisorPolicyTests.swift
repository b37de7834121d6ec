import Testing

@testable import ProcessSupervisor

@Suite("Restart policy")
struct SupervisorPolicyTests {
    @Test("the first restart is immediate, later ones back off, and too many crashes give up")
    func backoffAndGiveUp() {
        let policy = RestartPolicy()
        var history: [ContinuousClock.Instant] = []
        let now = ContinuousClock.now
        #expect(policy.decide(history: &history, now: now) == .restart(after: .zero))
        #expect(policy.decide(history: &history, now: now + .seconds(1)) == .restart(after: .milliseconds(250)))
        #expect(policy.decide(history: &history, now: now + .seconds(2)) == .restart(after: .milliseconds(500)))
        #expect(policy.decide(history: &history, now: now + .seconds(3)) == .restart(after: .seconds(1)))
        #expect(policy.decide(history: &history, now: now + .seconds(4)) == .giveUp(crashes: 5))
    }

    @Test("crashes older than the window are forgotten")
    func window() {
        let policy = RestartPolicy()
        var history: [ContinuousClock.Instant] = []
        let now = ContinuousClock.now
        for second in 0..<4 { _ = policy.decide(history: &history, now: now + .seconds(second)) }
        #expect(policy.decide(history: &history, now: now + .seconds(120)) == .restart(after: .zero))
        #expect(history.count == 1)
    }
}
