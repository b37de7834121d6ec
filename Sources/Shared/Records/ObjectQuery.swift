/// Which object records an operator asks for; a nil field matches every record.
public struct ObjectFilter: Sendable, Equatable {
    /// Only the objects of this client token.
    public var tokenID: Int64?
    /// Only the objects held by this upstream key.
    public var keyID: Int64?
    /// Only objects of this kind (`file`, `batch`, `response` …).
    public var kind: String?

    /// A filter on the given fields.
    public init(tokenID: Int64? = nil, keyID: Int64? = nil, kind: String? = nil) {
        self.tokenID = tokenID
        self.keyID = keyID
        self.kind = kind
    }
}

/// How many object records each key holds and each client token owns.
public struct ObjectCounts: Sendable, Equatable {
    /// Records by key id (removed keys included).
    public var byKey: [Int64: Int]
    /// Records by client token id.
    public var byToken: [Int64: Int]

    /// Counts as given.
    public init(byKey: [Int64: Int], byToken: [Int64: Int]) {
        self.byKey = byKey
        self.byToken = byToken
    }
}

/// The `object_generation` row: moved by every operator change to existing records (revoke, reassign), so
/// that workers, which otherwise only read new rows, reload their records.
public struct ObjectGeneration: Sendable, Equatable {
    /// Starts at 0; one more per change.
    public var generation: Int64
    /// When the last change was made, in Unix milliseconds (0 before any).
    public var changedAt: Int64

    /// A generation as given.
    public init(generation: Int64, changedAt: Int64) {
        self.generation = generation
        self.changedAt = changedAt
    }
}
