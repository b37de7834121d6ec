import Shared
import Synchronization

/// The worker's memory of the objects created through the gateway: its own at once, the other workers' as
/// the refresher reads them from the database. A request that names an id reads it here, never the database.
final class ObjectDirectory: Sendable {
    private struct State {
        var objects: [String: StoredObject] = [:]
        /// The position in the `objects` table read up to.
        var seenUpTo: Int64 = 0
        /// When expired records are looked for next (a minute apart: records last days).
        var nextExpiryCheck: Int64 = 0
        /// The generation of operator changes the records reflect; nil before the first load.
        var generation: Int64? = nil
        /// Records this worker created whose rows it has not read back from the database yet: a list adds
        /// them to what the database holds, so a client lists what it just created.
        var unstored: [String: StoredObject] = [:]
    }

    /// How long a record this worker created is added to lists before its row is read back (the collector
    /// stores it within milliseconds; a row kept in the spool while the collector is down comes later).
    static let unstoredLimitMs: Int64 = 600_000

    private let state = Mutex(State())
    /// Where an id missing here is looked for: the `objects` table, which another worker's record reaches
    /// before this worker's next poll does.
    private let store: (any ObjectStoring)?

    /// An empty directory; `store` answers for ids it has not learned yet.
    init(store: (any ObjectStoring)? = nil) {
        self.store = store
    }

    /// The most ids of one request looked up in the database: a body may list many, each a query.
    static let lookupLimit = 16

    /// Looks ids missing here up in the database (the first `lookupLimit` of them) and takes in the live
    /// records found; how many were found.
    func lookUp(_ ids: [String], now: Int64) async throws -> Int {
        guard let store else { return 0 }
        var found = 0
        for id in ids.prefix(Self.lookupLimit) {
            guard let object = try await store.object(id: id), object.expiresAt > now else { continue }
            state.withLock { state in
                if state.objects[object.id] == nil { state.objects[object.id] = object }
            }
            found += 1
        }
        return found
    }

    /// The records `query` reads for a list, after the record of `cursorID` when given: none when that is not
    /// one of the token's records of the kind (a cursor names an object the token listed).
    func list(_ query: ObjectListQuery, cursorID: String?) async throws -> [StoredObject] {
        guard let store else { return [] }
        var query = query
        if let cursorID {
            var cursor = object(cursorID[...])
            if cursor == nil { cursor = try await store.object(id: cursorID) }
            guard let cursor, cursor.tokenID == query.tokenID, cursor.kind == query.kind else { return [] }
            query.after = ObjectListQuery.Cursor(cursor)
        }
        let stored = try await store.list(query)
        let read = query
        let unstored = state.withLock { state in state.unstored.values.filter(read.shows) }
        guard !unstored.isEmpty else { return stored }
        var merged = stored
        for object in unstored where !stored.contains(where: { $0.id == object.id }) { merged.append(object) }
        merged.sort { read.orders(ObjectListQuery.Cursor($0), before: ObjectListQuery.Cursor($1)) }
        return Array(merged.prefix(query.limit))
    }

    /// The record of `id`, or nil.
    func object(_ id: Substring) -> StoredObject? {
        let key = String(id)
        return state.withLock { $0.objects[key] }
    }

    /// Records an object this worker saw created; false when its id was known already (the first record of an
    /// id stands, as in the database).
    func learn(_ object: StoredObject) -> Bool {
        state.withLock { state in
            guard state.objects[object.id] == nil else { return false }
            state.objects[object.id] = object
            state.unstored[object.id] = object
            return true
        }
    }

    /// Forgets a deleted object.
    func forget(_ id: String) {
        state.withLock { state in
            state.objects.removeValue(forKey: id)
            state.unstored.removeValue(forKey: id)
        }
    }

    /// The position in the `objects` table read up to.
    var seenUpTo: Int64 { state.withLock { $0.seenUpTo } }

    /// Takes in records read from the database up to position `last`.
    func merge(_ objects: [StoredObject], upTo last: Int64) {
        state.withLock { state in
            for object in objects {
                if state.objects[object.id] == nil { state.objects[object.id] = object }
                if !state.unstored.isEmpty { state.unstored.removeValue(forKey: object.id) }
            }
            state.seenUpTo = max(state.seenUpTo, last)
        }
    }

    /// The generation of operator changes (revoke, reassign) the records reflect; nil before the first load.
    var generation: Int64? { state.withLock { $0.generation } }

    /// Replaces every record with `objects`, the whole table read up to position `last` after the operator
    /// change `generation`. A record this worker learned itself after that change and the table did not hold
    /// yet stays (the collector writes it a moment later, past `last`); one learned before it does not (it was
    /// revoked, or its row comes past `last` all the same).
    func reload(_ objects: [StoredObject], upTo last: Int64, generation: ObjectGeneration) {
        var fresh: [String: StoredObject] = [:]
        fresh.reserveCapacity(objects.count)
        for object in objects where fresh[object.id] == nil { fresh[object.id] = object }
        state.withLock { state in
            // What the table holds now is stored; what this worker created before the change and the table no
            // longer holds was revoked.
            state.unstored = state.unstored.filter { id, object in
                fresh[id] == nil && object.createdAt > generation.changedAt
            }
            for (id, object) in state.objects where fresh[id] == nil && object.createdAt > generation.changedAt {
                fresh[id] = object
            }
            state.objects = fresh
            state.seenUpTo = last
            state.generation = generation.generation
        }
    }

    /// Drops the records expired at `now`, at most once a minute.
    func dropExpired(now: Int64) {
        state.withLock { state in
            guard now >= state.nextExpiryCheck else { return }
            state.nextExpiryCheck = now + 60_000
            state.unstored = state.unstored.filter { $0.value.createdAt > now - Self.unstoredLimitMs }
            guard state.objects.values.contains(where: { $0.expiresAt <= now }) else { return }
            state.objects = state.objects.filter { $0.value.expiresAt > now }
        }
    }

    /// How many records are held (tests, logs).
    var count: Int { state.withLock { $0.objects.count } }
}
