/// When to restart a crashed child, and when to give up: the first restart is immediate, later ones back
/// off, and `limit` crashes of one child within `window` means something is wrong that restarting won't fix.
struct RestartPolicy: Sendable {
    /// Crashes tolerated within `window` before giving up.
    var limit = 5
    /// The window crashes are counted in.
    var window: Duration = .seconds(60)
    /// Delay before the n-th restart within the window (the last entry repeats).
    var delays: [Duration] = [.zero, .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2)]

    /// Records a crash at `now` in `history` (pruned to the window) and says what to do.
    func decide(history: inout [ContinuousClock.Instant], now: ContinuousClock.Instant) -> Decision {
        history.removeAll { now - $0 > window }
        history.append(now)
        if history.count >= limit { return .giveUp(crashes: history.count) }
        return .restart(after: delays[min(history.count - 1, delays.count - 1)])
    }

    enum Decision: Equatable {
        case restart(after: Duration)
        case giveUp(crashes: Int)
    }
}
