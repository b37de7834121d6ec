/// An upstream key a worker can route to: its id, hint, and plaintext value (held only in memory).
public struct RoutableKey: Sendable, Equatable {
    /// Row id in `keys`.
    public let id: Int64
    /// Masked value, safe to log.
    public let hint: String
    /// The plaintext value sent upstream; never logged.
    public let value: String

    /// A key from its parts.
    public init(id: Int64, hint: String, value: String) {
        self.id = id
        self.hint = hint
        self.value = value
    }
}

/// Picks the upstream key for a request with the configured strategy, shared across every worker.
public struct KeySelector: Sendable {
    /// The strategy in force.
    public let strategy: RotationStrategy
    private let leastUsed: any LeastUsedPicking
    private let lease: PositionLease

    /// A selector leasing round-robin positions through `lease` and counting `least_used` picks in `leastUsed`,
    /// both in the shared database of either engine.
    public init(strategy: RotationStrategy, lease: PositionLease, leastUsed: any LeastUsedPicking) {
        self.strategy = strategy
        self.leastUsed = leastUsed
        self.lease = lease
    }

    /// A selector over the SQLite `database`.
    public init(strategy: RotationStrategy, database: ProxyDatabase, lease: PositionLease? = nil) {
        self.init(
            strategy: strategy, lease: lease ?? PositionLease(cursor: RotationCursor(database: database)),
            leastUsed: LeastUsedPicks(database: database))
    }

    /// The same selector (database, shared lease) with another strategy.
    public func with(strategy: RotationStrategy) -> KeySelector {
        KeySelector(strategy: strategy, lease: lease, leastUsed: leastUsed)
    }

    /// The outcome of trying to pick without waiting.
    public enum ImmediatePick: Sendable, Equatable {
        /// This key.
        case key(RoutableKey)
        /// No candidates.
        case none
        /// The strategy needs the database first: await `pick`.
        case needsDatabase
    }

    /// Picks at once when the strategy allows it (random; round_robin with a leased position).
    public func pickWithoutWaiting(from candidates: [RoutableKey]) -> ImmediatePick {
        guard !candidates.isEmpty else { return .none }
        if candidates.count == 1 { return .key(candidates[0]) }
        switch strategy {
        case .random:
            return candidates.randomElement().map(ImmediatePick.key) ?? .none
        case .roundRobin:
            guard let position = lease.nextWithoutWaiting(keyCount: candidates.count) else { return .needsDatabase }
            return .key(candidates[Int(position % Int64(candidates.count))])
        case .leastUsed:
            return .needsDatabase
        }
    }

    /// One key from `candidates` (sorted by id), or nil when there are none.
    public func pick(from candidates: [RoutableKey]) async throws -> RoutableKey? {
        guard !candidates.isEmpty else { return nil }
        if candidates.count == 1 { return candidates[0] }
        switch strategy {
        case .random:
            return candidates.randomElement()
        case .roundRobin:
            let position = try await lease.next(keyCount: candidates.count)
            return candidates[Int(position % Int64(candidates.count))]
        case .leastUsed:
            let ids = candidates.map(\.id)
            let chosen: Int64?
            if let reachability = lease.reachability {
                let leastUsed = self.leastUsed
                guard let picked = await reachability.bounded({ try await leastUsed.pick(among: ids) }) else {
                    // The shared counts are out of reach: this worker's own turn, until they answer again.
                    return candidates[Int(lease.nextLocal() % Int64(candidates.count))]
                }
                chosen = picked
            } else {
                chosen = try await leastUsed.pick(among: ids)
            }
            // A key the snapshot lists may have just been deleted; any candidate is then fine.
            return candidates.first { $0.id == chosen } ?? candidates[0]
        }
    }
}
