/// What an upstream answer (or its absence) says about the key that was used.
public enum KeyOutcome: Sendable, Equatable {
    /// The key worked: any answer that is not a key failure, including the request's own errors (400, 404 …).
    case success
    /// 401, or 403 for the key itself: the upstream refuses the key.
    case refused(status: Int, message: String)
    /// 429 without `insufficient_quota`: rate limited; `retryAfterMs` from the answer's headers, if any.
    case rateLimited(retryAfterMs: Int64?)
    /// 429 with `insufficient_quota`: out of credit.
    case quotaExhausted(message: String)
    /// 5xx, a connect error or a timeout: counts toward the cool-down after N in a row.
    case transient(status: Int?, reason: String)

    /// The upstream status code behind the outcome, when there was one.
    public var statusCode: Int? {
        switch self {
        case .success: return nil
        case .refused(let status, _): return status
        case .rateLimited, .quotaExhausted: return 429
        case .transient(let status, _): return status
        }
    }
}

/// The health fields of one key, as stored in `keys` and held by workers.
public struct KeyHealth: Sendable, Equatable {
    /// The key's state.
    public var status: KeyStatus
    /// Why it is in that state.
    public var reason: String?
    /// The upstream status code that moved it there.
    public var statusCode: Int?
    /// When it entered the state (Unix ms).
    public var since: Int64
    /// Cooling: when it returns by itself; quota_exhausted / invalid: when it is probed next (Unix ms).
    public var nextProbeAt: Int64?
    /// Transient failures in a row.
    public var consecutiveFailures: Int
    /// Cool-downs in a row without a success.
    public var coolingLevel: Int
    /// The client token whose request's answer made the key invalid, while no probe has confirmed it.
    public var markedByToken: Int64?

    /// Health fields from their parts.
    public init(
        status: KeyStatus, reason: String? = nil, statusCode: Int? = nil, since: Int64 = 0, nextProbeAt: Int64? = nil,
        consecutiveFailures: Int = 0, coolingLevel: Int = 0, markedByToken: Int64? = nil
    ) {
        self.status = status
        self.reason = reason
        self.statusCode = statusCode
        self.since = since
        self.nextProbeAt = nextProbeAt
        self.consecutiveFailures = consecutiveFailures
        self.coolingLevel = coolingLevel
        self.markedByToken = markedByToken
    }

    /// A key in rotation with nothing against it.
    public static let healthy = KeyHealth(status: .active)

    /// Whether a request may use the key at `now`: active, or cooling with its time up.
    public func isEligible(now: Int64) -> Bool {
        switch status {
        case .active: return true
        case .cooling: return (nextProbeAt ?? 0) <= now
        case .quotaExhausted, .invalid, .disabled: return false
        }
    }

    /// Whether a request made the key invalid and a probe has yet to confirm it.
    public var awaitsConfirmation: Bool { status == .invalid && markedByToken != nil }

    /// Whether a success must be written down: it would reset a count or bring the key back.
    public var successChangesSomething: Bool {
        status != .active || consecutiveFailures > 0 || coolingLevel > 0
    }
}

/// One change of state, as logged and kept in `key_events`.
public struct KeyTransition: Sendable, Equatable {
    /// The state left.
    public let from: KeyStatus
    /// The state entered.
    public let to: KeyStatus
    /// Why.
    public let reason: String
    /// The upstream status code behind it, if any.
    public let statusCode: Int?
}

/// The key state machine: what each outcome does to a key's health.
///
/// - `active` → `cooling`: a 429 (for `Retry-After` / the reset headers, else a backoff from 5 s doubling
///   to 10 min), or the N-th transient failure in a row (backoff); a success resets the count.
/// - `cooling` → `active`: its time is up (the prober writes it; workers use the key from that moment),
///   or a request or probe through it succeeded.
/// - any → `quota_exhausted`: a 429 with `insufficient_quota`; probed every `quotaProbeInterval`.
/// - any → `invalid`: a 401, or a 403 for the key (not one that blames the request: `UpstreamVerdict`);
///   probed every `invalidProbeInterval`.
/// - A request's answer only suspects a key: it enters `invalid` marked with the request's client token
///   and is probed `confirmDelay` later (not after `invalidProbeInterval`). The probe decides: a pass
///   brings it back to `active`, a refusal confirms it (the mark goes, the normal interval applies), no
///   answer probes again `confirmDelay` later.
/// - One client token takes at most one key out of rotation before a probe agrees: while a key its
///   request marked awaits its probe, further refusals of that token's requests mark no other key
///   (`refusalMayMark`); the request gets the upstream's answer as it came. The marks live in
///   `keys.marked_by_token`, and the store checks them in the transaction that would mark, so the rule
///   holds across worker processes; each worker also checks its own view first.
/// - `quota_exhausted` / `invalid` → `active`: a successful probe (or request).
/// - `disabled`: set and cleared by an operator only; outcomes never touch it. Leaving `invalid` by any
///   way (an operator's too) drops the mark.
public struct KeyHealthPolicy: Sendable, Equatable {
    /// Transient failures in a row that send a key cooling.
    public var failureThreshold: Int
    /// First cool-down without a `Retry-After`.
    public var coolingBase: Duration
    /// Longest cool-down.
    public var coolingMax: Duration
    /// How often a quota_exhausted key is probed.
    public var quotaProbeInterval: Duration
    /// How often an invalid key is probed.
    public var invalidProbeInterval: Duration
    /// How soon a key a request's answer made invalid is probed to confirm it.
    public var confirmDelay: Duration

    /// A policy from its parts; defaults as documented.
    public init(
        failureThreshold: Int = 3, coolingBase: Duration = .seconds(5), coolingMax: Duration = .seconds(600),
        quotaProbeInterval: Duration = .seconds(3600), invalidProbeInterval: Duration = .seconds(6 * 3600),
        confirmDelay: Duration = .seconds(2)
    ) {
        self.failureThreshold = failureThreshold
        self.coolingBase = coolingBase
        self.coolingMax = coolingMax
        self.quotaProbeInterval = quotaProbeInterval
        self.invalidProbeInterval = invalidProbeInterval
        self.confirmDelay = confirmDelay
    }

    /// Whether a refusal of key `keyID` answered to a request of client token `token` may take the key out
    /// of rotation, given the marks that await their probe (key id, token): not while a mark of the same
    /// token on another key does.
    public static func refusalMayMark(
        keyID: Int64, token: Int64, marks: some Sequence<(key: Int64, token: Int64)>
    ) -> Bool {
        !marks.contains { $0.token == token && $0.key != keyID }
    }

    /// The cool-down after `level` cool-downs in a row: base × 2^level, at most the maximum.
    public func backoff(level: Int) -> Int64 {
        let base = Int64(coolingBase.inMilliseconds)
        let maximum = Int64(coolingMax.inMilliseconds)
        guard level < 40 else { return maximum }
        return min(base << Int64(level), maximum)
    }

    /// The health after `outcome` at `now`, and the transition if the state changed. `token`: the client
    /// token of the request whose answer it was; nil for a probe's, which is confirmed.
    public func apply(
        _ outcome: KeyOutcome, to health: KeyHealth, now: Int64, token: Int64? = nil
    ) -> (KeyHealth, KeyTransition?) {
        var next = health
        if health.status == .disabled { return (health, nil) }
        switch outcome {
        case .success:
            next.consecutiveFailures = 0
            next.coolingLevel = 0
            if health.status != .active {
                return enter(.active, reason: "request succeeded", statusCode: nil, nextProbeAt: nil, next, now)
            }
            return (next, nil)
        case .refused(let status, let message):
            if let token {
                // Out of rotation already: the probe that is due decides, at its time.
                if health.status == .invalid { return (health, nil) }
                var (marked, transition) = enter(
                    .invalid, reason: "upstream answered \(status) to a request: \(message); a probe confirms",
                    statusCode: status, nextProbeAt: now + Int64(confirmDelay.inMilliseconds), next, now)
                marked.markedByToken = token
                return (marked, transition)
            }
            var (confirmed, transition) = enter(
                .invalid, reason: "upstream answered \(status): \(message)", statusCode: status,
                nextProbeAt: now + Int64(invalidProbeInterval.inMilliseconds), next, now)
            confirmed.markedByToken = nil
            return (confirmed, transition)
        case .quotaExhausted(let message):
            return enter(
                .quotaExhausted, reason: "upstream answered 429 insufficient_quota: \(message)", statusCode: 429,
                nextProbeAt: now + Int64(quotaProbeInterval.inMilliseconds), next, now)
        case .rateLimited(let retryAfter):
            let wait = retryAfter ?? backoff(level: health.coolingLevel)
            next.coolingLevel = health.coolingLevel + 1
            let until = max(now + max(wait, 0), health.status == .cooling ? health.nextProbeAt ?? 0 : 0)
            let reason =
                retryAfter != nil
                ? "rate limited (429), retry after \(Self.describe(ms: wait))"
                : "rate limited (429), backoff \(Self.describe(ms: wait))"
            return enter(.cooling, reason: reason, statusCode: 429, nextProbeAt: until, next, now)
        case .transient(let status, let reason):
            next.consecutiveFailures = health.consecutiveFailures + 1
            guard next.consecutiveFailures >= failureThreshold else { return (next, nil) }
            if health.status == .quotaExhausted || health.status == .invalid { return (next, nil) }
            let wait = backoff(level: health.coolingLevel)
            next.coolingLevel = health.coolingLevel + 1
            return enter(
                .cooling,
                reason:
                    "\(next.consecutiveFailures) failures in a row (last: \(reason)), backoff \(Self.describe(ms: wait))",
                statusCode: status, nextProbeAt: now + wait, next, now)
        }
    }

    /// A cooling key whose time is up goes back into rotation.
    public func coolingElapsed(_ health: KeyHealth, now: Int64) -> (KeyHealth, KeyTransition?) {
        guard health.status == .cooling, (health.nextProbeAt ?? 0) <= now else { return (health, nil) }
        return enter(.active, reason: "cool-down over", statusCode: nil, nextProbeAt: nil, health, now)
    }

    /// The health after a probe: back to active on success, else the failure applied and the next probe
    /// scheduled for keys that stay out of rotation.
    public func probed(_ outcome: KeyOutcome, health: KeyHealth, now: Int64) -> (KeyHealth, KeyTransition?) {
        if health.status == .disabled { return (health, nil) }
        if outcome == .success {
            var next = health
            next.consecutiveFailures = 0
            next.coolingLevel = 0
            guard health.status != .active else { return (next, nil) }
            return enter(.active, reason: "probe succeeded", statusCode: nil, nextProbeAt: nil, next, now)
        }
        var (next, transition) = apply(outcome, to: health, now: now)
        if transition == nil {
            // Still out of rotation: probe again after the state's interval; a mark no probe could confirm
            // (no answer) is probed again soon.
            switch next.status {
            case .invalid where next.markedByToken != nil:
                next.nextProbeAt = now + Int64(confirmDelay.inMilliseconds)
            case .invalid: next.nextProbeAt = now + Int64(invalidProbeInterval.inMilliseconds)
            case .quotaExhausted: next.nextProbeAt = now + Int64(quotaProbeInterval.inMilliseconds)
            case .active, .cooling, .disabled: break
            }
            if let code = outcome.statusCode { next.statusCode = code }
        }
        return (next, transition)
    }

    private func enter(
        _ status: KeyStatus, reason: String, statusCode: Int?, nextProbeAt: Int64?, _ health: KeyHealth, _ now: Int64
    ) -> (KeyHealth, KeyTransition?) {
        var next = health
        next.reason = reason
        next.statusCode = statusCode
        next.nextProbeAt = nextProbeAt
        if status != .invalid { next.markedByToken = nil }
        guard health.status != status else { return (next, nil) }
        next.status = status
        next.since = now
        return (next, KeyTransition(from: health.status, to: status, reason: reason, statusCode: statusCode))
    }

    /// `2 s`, `1.5 s`, `10 min` for log lines and reasons.
    static func describe(ms: Int64) -> String {
        if ms >= 60_000, ms % 60_000 == 0 { return "\(ms / 60_000) min" }
        if ms % 1000 == 0 { return "\(ms / 1000) s" }
        return "\(Double(ms) / 1000) s"
    }
}
