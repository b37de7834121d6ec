/// Key health writes and reads, the same on every engine: `KeyHealthStore` (SQLite) and
/// `PostgresKeyHealthStore`, held to one behaviour by one test suite run against both.
public protocol KeyHealthStoring: Sendable {
    /// Key `id`'s sealed value and state, for a probe; nil when no key has that id.
    func probeTarget(keyID id: Int64) async throws -> (sealed: String, status: KeyStatus)?
    /// Active keys whose models are unknown and that were last probed at or before `probedBefore` (or never).
    func keysWithoutModels(probedBefore: Int64) async throws -> [Int64]
    /// The thresholds and cool-downs health changes follow.
    var policy: KeyHealthPolicy { get }
    /// Applies what a request of client token `token` learned about key `id`; nil when the key no longer exists.
    @discardableResult
    func record(
        _ outcome: KeyOutcome, keyID id: Int64, token: Int64?, now: Int64
    ) async throws
        -> KeyHealthStore.Applied?
    /// Brings every cooling key whose time is up back to active; returns how many.
    @discardableResult
    func releaseCooledKeys(now: Int64) async throws -> Int
    /// Stores a probe's result and moves the key accordingly; nil when the key no longer exists.
    @discardableResult
    func recordProbe(
        _ probe: KeyHealthStore.ProbeRecord, keyID id: Int64, now: Int64
    ) async throws
        -> KeyHealthStore.Applied?
    /// Keys whose probe is due at `now`: quota_exhausted and invalid keys past their next-probe time.
    func keysDueForProbe(now: Int64) async throws -> [Int64]
    /// The earliest time something is due (a cooling key returns, a probe), if any.
    func nextDueTime() async throws -> Int64?
    /// Stores the rate-limit figures workers saw, newest wins; a write that does not touch the generation.
    func saveRateLimits(_ figures: [Int64: RateLimitState]) async throws
    /// Rate-limit figures stored since `since` (Unix ms), by key id.
    func rateLimits(since: Int64) async throws -> [Int64: RateLimitState]
}

extension KeyHealthStore: KeyHealthStoring {}
