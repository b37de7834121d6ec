/// When to restart a crashed child, and when to give up: the first restart is immediate, later ones back
/// off, and `limit` failures to start one child within `window` is a crash loop that restarting won't fix.
///
/// Only a child that dies before it signalled readiness counts towards giving up. A child that served and
/// then died is always restarted (with backoff): whatever killed it may have come from a client, and no
/// request pattern may stop the service.
struct RestartPolicy: Sendable {
    /// Failures to start tolerated within `window` before giving up.
    var limit = 5
    /// The window crashes are counted in.
    var window: Duration = .seconds(60)
    /// Delay before the n-th restart within the window (the last entry repeats).
    var delays: [Duration] = [.zero, .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2)]

    /// One crash as the policy remembers it.
    struct Crash: Equatable, Sendable {
        /// When the child died.
        let at: ContinuousClock.Instant
        /// Whether it had signalled readiness (it served) before it died.
        let served: Bool
    }

    /// Records a crash at `now` in `history` (pruned to the window) and says what to do; `served` says
    /// whether the child had signalled readiness before it died.
    func decide(history: inout [Crash], now: ContinuousClock.Instant, served: Bool) -> Decision {
        history.removeAll { now - $0.at > window }
        history.append(Crash(at: now, served: served))
        let failedStarts = history.count(where: { !$0.served })
        if !served, failedStarts >= limit { return .giveUp(crashes: failedStarts) }
        return .restart(after: delays[min(history.count - 1, delays.count - 1)])
    }

    /// What to do about a crash.
    enum Decision: Equatable {
        case restart(after: Duration)
        case giveUp(crashes: Int)
    }
}
