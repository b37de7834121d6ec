import Logging
import Shared
import Synchronization

/// A worker's live view of key health: what this worker learned about keys before the snapshot shows it
/// (its own failures take effect at once; the database write follows, from the board's own service), and
/// the rate-limit figures seen by every worker. It also picks the keys a request may use.
final class KeyHealthBoard: Sendable {
    /// Where routing a request leads.
    enum Route: Equatable {
        /// Keys the request may use: those with rate-limit headroom when there are any, and for a retry,
        /// those without failures in a row when there are any.
        case candidates([RoutableKey])
        /// No key reaches the requested model.
        case modelNotFound
        /// Keys reach the model but none may be used now; retry after this many seconds, when known.
        case unavailable(retryAfterSeconds: Int?)
        /// Keys that may serve the request were all tried already.
        case exhausted
        /// The pool has no key at all.
        case noKeys
    }

    private struct Override {
        var health: KeyHealth
        /// Database writes of this worker for the key still running.
        var pendingWrites = 0
        /// The generation whose snapshot shows the last write.
        var shownAtGeneration: Int64?
        /// When an override whose write failed is dropped anyway.
        var expiresAt: Int64?
    }

    private struct State {
        var overrides: [Int64: Override] = [:]
        var rateLimits: [Int64: RateLimitState] = [:]
        var unsaved: Set<Int64> = []
        var sharedSeenUpTo: Int64 = 0
    }

    private let state = Mutex(State())
    let store: any KeyHealthStoring
    let logger: Logger
    /// Changes on their way to the database, taken by `run()` in the order reported.
    let writes: AsyncStream<HealthWrite>
    let writeQueue: AsyncStream<HealthWrite>.Continuation
    /// Set once the worker drains: a write the database cannot take is then given up, not retried.
    let stopping = Atomic<Bool>(false)

    init(store: any KeyHealthStoring, logger: Logger) {
        self.store = store
        self.logger = logger
        (writes, writeQueue) = AsyncStream.makeStream(of: HealthWrite.self)
    }

    /// The keys a request for `model` may use at `now`, never one in `tried`.
    func route(_ snapshot: RoutingSnapshot, model: String?, excluding tried: [Int64], now: Int64) -> Route {
        guard !snapshot.keys.isEmpty else { return .noKeys }
        return state.withLock { state in
            var preferred: [RoutableKey] = []
            // Room for every key at once: grown one append at a time, it was reallocated on every request.
            preferred.reserveCapacity(snapshot.keys.count)
            // Keys to use only when no preferred key is left: no rate-limit headroom, or failing (on a retry).
            var spent: [RoutableKey] = []
            var reachable = false
            var triedEligible = false
            var earliestCooling: Int64?
            var earliestProbe: Int64?
            let retrying = !tried.isEmpty
            for pooled in snapshot.keys where pooled.reaches(model) {
                reachable = true
                let health = Self.effective(pooled, generation: snapshot.generation, now: now, in: &state)
                guard health.isEligible(now: now) else {
                    if let at = health.nextProbeAt {
                        if health.status == .cooling {
                            earliestCooling = min(earliestCooling ?? at, at)
                        } else {
                            earliestProbe = min(earliestProbe ?? at, at)
                        }
                    }
                    continue
                }
                if tried.contains(pooled.key.id) {
                    triedEligible = true
                    continue
                }
                if let figures = state.rateLimits[pooled.key.id], !figures.hasHeadroom(now: now) {
                    spent.append(pooled.key)
                } else if retrying, health.consecutiveFailures > 0 {
                    // A retry goes to a key that is not failing already, when there is one.
                    spent.append(pooled.key)
                } else {
                    preferred.append(pooled.key)
                }
            }
            guard reachable else { return .modelNotFound }
            if !preferred.isEmpty { return .candidates(preferred) }
            if !spent.isEmpty { return .candidates(spent) }
            if triedEligible { return .exhausted }
            guard let at = earliestCooling ?? earliestProbe else { return .unavailable(retryAfterSeconds: 1) }
            return .unavailable(retryAfterSeconds: max(1, Int((at - now + 999) / 1000)))
        }
    }

    /// Where a request bound to the key that holds its objects can go: that key alone, never another.
    enum PinnedRoute: Equatable {
        /// The key may serve it now.
        case key(RoutableKey)
        /// The key is cooling down (rate limited or failing) or out of quota; it may serve again later.
        case waiting(KeyStatus, retryAfterSeconds: Int)
        /// The key is refused by the upstream (a probe may bring it back).
        case invalid
        /// An operator disabled the key.
        case disabled
        /// The key was removed from the pool.
        case removed
    }

    /// The state of key `id` for a request bound to it at `now`.
    func pinnedRoute(_ snapshot: RoutingSnapshot, keyID id: Int64, now: Int64) -> PinnedRoute {
        guard let pooled = snapshot.keys.first(where: { $0.key.id == id }) else {
            return snapshot.disabledKeyIDs.contains(id) ? .disabled : .removed
        }
        let health = state.withLock { state in
            Self.effective(pooled, generation: snapshot.generation, now: now, in: &state)
        }
        if health.isEligible(now: now) { return .key(pooled.key) }
        switch health.status {
        case .invalid: return .invalid
        case .disabled: return .disabled
        case .active, .cooling, .quotaExhausted:
            let retryAfter = health.nextProbeAt.map { max(1, Int(($0 - now + 999) / 1000)) } ?? 1
            return .waiting(health.status, retryAfterSeconds: retryAfter)
        }
    }

    /// Applies what a request of client token `token` learned about `key` here at once, and writes it to
    /// the database. False when a refusal marks nothing: a key that token's requests marked awaits its
    /// probe (as this worker knows; the database decides again for every worker).
    @discardableResult
    func report(
        _ outcome: KeyOutcome, key: RoutableKey, snapshot: RoutingSnapshot, now: Int64, token: Int64? = nil
    ) -> Bool {
        let stored = snapshot.keys.first { $0.key.id == key.id }
        let policy = store.policy
        let decision = state.withLock { state -> Bool? in
            if case .refused = outcome, let token,
                !KeyHealthPolicy.refusalMayMark(
                    keyID: key.id, token: token, marks: Self.marks(snapshot, now: now, in: &state))
            {
                return nil
            }
            let current =
                stored.map { Self.effective($0, generation: snapshot.generation, now: now, in: &state) }
                ?? state.overrides[key.id]?.health ?? .healthy
            if outcome == .success, !current.successChangesSomething { return false }
            let (next, _) = policy.apply(outcome, to: current, now: now, token: token)
            var override = state.overrides[key.id] ?? Override(health: next)
            override.health = next
            override.pendingWrites += 1
            override.expiresAt = nil
            state.overrides[key.id] = override
            return true
        }
        guard let changed = decision else { return false }
        guard changed else { return true }
        enqueue(HealthWrite(outcome: outcome, key: key, token: token, now: now))
        return true
    }

    /// Settles what this worker knows once `write` ran: `shownAt` is the generation whose snapshot shows it and
    /// `stored` what the database holds now (both nil when it was not saved: the change then holds for a while).
    func settle(_ write: HealthWrite, shownAt: Int64?, stored: KeyHealth?) {
        let now = WallClock.nowMs()
        state.withLock { state in
            guard var override = state.overrides[write.key.id] else { return }
            override.pendingWrites -= 1
            // Another worker's mark for the same token may have made the database decline this one.
            if case .refused = write.outcome, write.token != nil, override.pendingWrites == 0, let stored {
                override.health = stored
            }
            if let shownAt {
                override.shownAtGeneration = max(override.shownAtGeneration ?? shownAt, shownAt)
            } else {
                override.expiresAt = now + 5000
            }
            state.overrides[write.key.id] = override
        }
    }

    /// The marks that await their probe, as this worker knows them: (key id, client token).
    private static func marks(
        _ snapshot: RoutingSnapshot, now: Int64, in state: inout State
    ) -> [(key: Int64, token: Int64)] {
        var marks: [(key: Int64, token: Int64)] = []
        for pooled in snapshot.keys {
            let health = effective(pooled, generation: snapshot.generation, now: now, in: &state)
            if health.awaitsConfirmation, let token = health.markedByToken { marks.append((pooled.key.id, token)) }
        }
        return marks
    }

    /// Keeps the rate-limit figures an answer carried for key `id`.
    func observe(_ figures: RateLimitState, keyID id: Int64) {
        state.withLock { state in
            state.rateLimits[id] = figures
            state.unsaved.insert(id)
        }
    }

    /// Saves this worker's new rate-limit figures and takes in those other workers saved.
    func exchangeRateLimits() async {
        let (unsaved, since) = state.withLock { state in
            let unsaved = state.unsaved.reduce(into: [Int64: RateLimitState]()) { $0[$1] = state.rateLimits[$1] }
            state.unsaved.removeAll()
            // Figures are written up to a refresh interval after they were seen: look back a little.
            return (unsaved, state.sharedSeenUpTo - 2000)
        }
        do {
            try await store.saveRateLimits(unsaved)
            let shared = try await store.rateLimits(since: since)
            state.withLock { state in
                for (id, figures) in shared where figures.observedAt > (state.rateLimits[id]?.observedAt ?? 0) {
                    state.rateLimits[id] = figures
                }
                state.sharedSeenUpTo = max(state.sharedSeenUpTo, shared.values.map(\.observedAt).max() ?? 0)
            }
        } catch {
            logger.warning("rate-limit figures not exchanged: \(PostgresErrorText.line(error))")
        }
    }

    /// The key's health as this worker knows it: its own override until the snapshot shows the write.
    private static func effective(
        _ pooled: PoolKey, generation: Int64, now: Int64, in state: inout State
    ) -> KeyHealth {
        guard let override = state.overrides[pooled.key.id] else { return pooled.health }
        if override.pendingWrites == 0 {
            let shown = override.shownAtGeneration.map { generation >= $0 } ?? false
            let expired = override.expiresAt.map { now >= $0 } ?? false
            if shown || expired {
                state.overrides[pooled.key.id] = nil
                return pooled.health
            }
        }
        return override.health
    }
}
