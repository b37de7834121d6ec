import Testing

@testable import ProcessSupervisor

@Suite("Restart policy")
struct SupervisorPolicyTests {
    @Test("a child that never served: the first restart is immediate, later ones back off, the fifth gives up")
    func backoffAndGiveUp() {
        let policy = RestartPolicy()
        var history: [RestartPolicy.Crash] = []
        let now = ContinuousClock.now
        #expect(policy.decide(history: &history, now: now, served: false) == .restart(after: .zero))
        #expect(
            policy.decide(history: &history, now: now + .seconds(1), served: false)
                == .restart(after: .milliseconds(250)))
        #expect(
            policy.decide(history: &history, now: now + .seconds(2), served: false)
                == .restart(after: .milliseconds(500)))
        #expect(policy.decide(history: &history, now: now + .seconds(3), served: false) == .restart(after: .seconds(1)))
        #expect(policy.decide(history: &history, now: now + .seconds(4), served: false) == .giveUp(crashes: 5))
    }

    @Test("crashes older than the window are forgotten")
    func window() {
        let policy = RestartPolicy()
        var history: [RestartPolicy.Crash] = []
        let now = ContinuousClock.now
        for second in 0..<4 { _ = policy.decide(history: &history, now: now + .seconds(second), served: false) }
        #expect(policy.decide(history: &history, now: now + .seconds(120), served: false) == .restart(after: .zero))
        #expect(history.count == 1)
    }

    @Test("a child that served is always restarted, however often it dies, with the backoff capped")
    func servedNeverGivesUp() {
        let policy = RestartPolicy()
        var history: [RestartPolicy.Crash] = []
        let now = ContinuousClock.now
        var decisions: [RestartPolicy.Decision] = []
        for tenth in 0..<50 {
            decisions.append(policy.decide(history: &history, now: now + .milliseconds(100 * tenth), served: true))
        }
        let backoff = policy.delays.map { RestartPolicy.Decision.restart(after: $0) }
        #expect(Array(decisions.prefix(5)) == backoff)
        #expect(decisions.dropFirst(5).allSatisfy { $0 == .restart(after: .seconds(2)) })
    }

    @Test("served crashes slow restarts down but do not count towards giving up")
    func servedCrashesDoNotCount() {
        let policy = RestartPolicy()
        var history: [RestartPolicy.Crash] = []
        let now = ContinuousClock.now
        for second in 0..<10 { _ = policy.decide(history: &history, now: now + .seconds(second), served: true) }
        for second in 10..<14 {
            #expect(
                policy.decide(history: &history, now: now + .seconds(second), served: false)
                    == .restart(after: .seconds(2)))
        }
        #expect(policy.decide(history: &history, now: now + .seconds(14), served: false) == .giveUp(crashes: 5))
    }
}
