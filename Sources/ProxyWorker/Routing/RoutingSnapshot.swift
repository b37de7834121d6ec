import Foundation
import Logging
import Shared
import Synchronization

/// One key of the pool as a worker routes on it: the key, its health and the models it reaches.
struct PoolKey: Sendable {
    /// Id, hint and plaintext value.
    let key: RoutableKey
    /// Its state as stored when the snapshot was read.
    let health: KeyHealth
    /// Model ids the key reached at its last probe; nil while unknown (then it may serve any model).
    let models: Set<String>?

    /// Whether the key may serve `model` (any model when either is unknown).
    func reaches(_ model: String?) -> Bool {
        guard let model, let models else { return true }
        return models.contains(model)
    }
}

/// An active client token as the worker checks it.
struct TokenEntry: Sendable, Equatable {
    /// Row id in `client_tokens`.
    let id: Int64
    /// Its limits; nil when it has none (the common case: nothing to check).
    let limits: ClientTokenLimits?
    /// The admin console's own token: its conversations are kept by the admin server, not as proxied chats.
    var isInternal = false
}

/// What a worker routes on, held in memory: the keys that are not disabled (decrypted), active client
/// tokens with their limits, and the proxy's own model list.
struct RoutingSnapshot: Sendable {
    /// Database generation this snapshot was read at.
    var generation: Int64
    /// Keys not disabled by an operator, sorted by id, whatever their health.
    var keys: [PoolKey]
    /// SHA-256 hex of each active client token → the token.
    var tokens: [String: TokenEntry]
    /// `GET /v1/models` answered here, from the enabled rows of `models`; nil when the table is empty
    /// (the request then goes upstream).
    var modelList: String? = nil
    /// The live settings (`PUT /api/settings`) over the configuration; nil when loaded without one.
    var settings: LiveSettings? = nil
    /// Keys an operator disabled: a request bound to one's objects is told so, rather than that it was removed.
    var disabledKeyIDs: Set<Int64> = []

    static let empty = RoutingSnapshot(generation: -1, keys: [], tokens: [:])

    /// Reads a consistent snapshot from the SQLite `database` (see `load(from:box:logger:opened:configuration:)`).
    static func load(
        from database: ProxyDatabase, box: SecretBox, logger: Logger, opened: OpenedKeys = OpenedKeys(),
        configuration: ProxyConfiguration? = nil
    ) async throws -> RoutingSnapshot {
        try await load(
            from: PoolStateStore(database: database), box: box, logger: logger, opened: opened,
            configuration: configuration)
    }

    /// Reads a consistent snapshot from `source`; keys that do not open with `box` are skipped and logged.
    /// `opened` caches decrypted values by sealed text, so a reload decrypts only what changed.
    static func load(
        from source: any PoolStateReading, box: SecretBox, logger: Logger, opened: OpenedKeys = OpenedKeys(),
        configuration: ProxyConfiguration? = nil
    ) async throws -> RoutingSnapshot {
        let state = try await source.state()
        var keys: [PoolKey] = []
        for stored in state.keys {
            do {
                let value = try opened.value(of: stored.sealed, box: box)
                keys.append(
                    PoolKey(
                        key: RoutableKey(id: stored.id, hint: stored.hint, value: value), health: stored.health,
                        models: stored.models.flatMap(Self.decodeModels)))
            } catch {
                logger.error(
                    "key skipped: \(error)", metadata: ["key.id": "\(stored.id)", "key.hint": "\(stored.hint)"])
            }
        }
        opened.keepOnly(state.keys.map(\.sealed))
        var tokens: [String: TokenEntry] = [:]
        for token in state.tokens {
            let limits = token.limits
            tokens[token.tokenHash] = TokenEntry(
                id: token.id ?? 0, limits: limits == .init() ? nil : limits, isInternal: token.isInternal)
        }
        return RoutingSnapshot(
            generation: state.generation, keys: keys, tokens: tokens,
            modelList: state.enabledModels.map(ModelCatalog.openAIList),
            settings: configuration.map { LiveSettings.resolved($0, overrides: state.settingsOverrides) },
            disabledKeyIDs: Set(state.disabledKeyIDs))
    }

    static func decodeModels(_ text: String) -> Set<String>? {
        guard let models = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else { return nil }
        return Set(models)
    }
}

/// Decrypted key values by their sealed text, kept across snapshot reloads.
final class OpenedKeys: Sendable {
    private let values = Mutex<[String: String]>([:])

    /// The plaintext of `sealed`, decrypted once.
    func value(of sealed: String, box: SecretBox) throws -> String {
        if let value = values.withLock({ $0[sealed] }) { return value }
        let value = try box.open(sealed)
        values.withLock { $0[sealed] = value }
        return value
    }

    /// Forgets values no longer stored.
    func keepOnly(_ sealed: [String]) {
        let keep = Set(sealed)
        values.withLock { values in values = values.filter { keep.contains($0.key) } }
    }
}

/// The current snapshot with the request settings resolved for it, swapped atomically by the refresher and
/// read once by every request.
final class SnapshotStore: Sendable {
    /// The configuration's request settings, which a snapshot's live settings override.
    let defaults: RequestSettings
    private let current: Mutex<RequestSnapshot>
    private let used = Mutex<[Int64: Int64]>([:])

    /// A store holding the empty snapshot, with `defaults` in force until one with live settings loads.
    init(defaults: RequestSettings) {
        self.defaults = defaults
        current = Mutex(RequestSnapshot(routing: .empty, settings: defaults))
    }

    /// Tokens (prompt + completion) each client token with a quota has used, as of the last refresh.
    func tokensUsed(by id: Int64) -> Int64 {
        used.withLock { $0[id] ?? 0 }
    }

    /// Replaces the tokens used per client token.
    func replaceTokensUsed(with figures: [Int64: Int64]) {
        var figures = figures
        used.withLock { swap(&$0, &figures) }
        // The old figures are freed here, after the lock: freeing a large table may unmap memory.
    }

    /// The snapshot in force.
    var snapshot: RoutingSnapshot { current.withLock { $0.routing } }

    /// The snapshot in force with its request settings: what a request reads once, at its head.
    var forRequest: RequestSnapshot { current.withLock { $0 } }

    /// Replaces the snapshot; its request settings are resolved here, once per load.
    func replace(with snapshot: RoutingSnapshot) {
        var resolved = RequestSnapshot(routing: snapshot, settings: defaults.overridden(by: snapshot.settings))
        current.withLock { swap(&$0, &resolved) }
        // The old snapshot is freed here, after the lock every request takes: freeing a large one may unmap memory.
    }
}
