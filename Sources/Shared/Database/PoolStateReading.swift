/// A key as a worker's snapshot reads it: sealed value, health, and the models it reached (JSON, as stored).
public struct PoolStateKey: Sendable, Equatable {
    /// Row id.
    public var id: Int64
    /// The masked hint.
    public var hint: String
    /// The AES-GCM sealed value.
    public var sealed: String
    /// Its state.
    public var health: KeyHealth
    /// JSON array of the model ids it reached at its last probe; nil while unknown.
    public var models: String?

    /// A key with every field given.
    public init(id: Int64, hint: String, sealed: String, health: KeyHealth, models: String?) {
        self.id = id
        self.hint = hint
        self.sealed = sealed
        self.health = health
        self.models = models
    }
}

/// Everything a worker routes on, read at one instant.
public struct PoolState: Sendable {
    /// The pool generation it was read at.
    public var generation: Int64
    /// Keys not disabled by an operator, by id.
    public var keys: [PoolStateKey]
    /// Active client tokens.
    public var tokens: [ClientToken]
    /// The enabled models, by name; nil when the models table is empty (the proxy then passes `/v1/models` on).
    public var enabledModels: [ModelEntry]?
    /// The live settings' stored overrides, by setting name.
    public var settingsOverrides: [String: String]
    /// Ids of the keys an operator disabled.
    public var disabledKeyIDs: [Int64]

    /// A state with every field given.
    public init(
        generation: Int64, keys: [PoolStateKey], tokens: [ClientToken], enabledModels: [ModelEntry]?,
        settingsOverrides: [String: String], disabledKeyIDs: [Int64]
    ) {
        self.generation = generation
        self.keys = keys
        self.tokens = tokens
        self.enabledModels = enabledModels
        self.settingsOverrides = settingsOverrides
        self.disabledKeyIDs = disabledKeyIDs
    }
}

/// What a worker reads to route — the pool generation, the whole state when it moved, the tokens quota-limited
/// tokens used — the same on every engine: `PoolStateStore` (SQLite) and `PostgresPoolStateStore`, held to one
/// behaviour by one suite run against both.
public protocol PoolStateReading: Sendable {
    /// The pool generation: it moves whenever something workers route on changes, in any process.
    func generation() async throws -> Int64
    /// The whole state, read in one snapshot of the database.
    func state() async throws -> PoolState
    /// Tokens (prompt + completion) used by each active client token that has a quota, by id.
    func tokensUsed() async throws -> [Int64: Int64]
}
