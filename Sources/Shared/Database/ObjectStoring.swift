/// The `objects` table's operations, the same on every engine: `ObjectStore` (SQLite) and `PostgresObjectStore`,
/// held to one behaviour by one test suite run against both.
public protocol ObjectStoring: Sendable {
    /// Stores what workers learned, in order; a record already stored is left as it is (rows may come twice).
    func apply(_ changes: [ObjectChange]) async throws
    /// The record of `id`, or nil.
    func object(id: String) async throws -> StoredObject?
    /// Records written after position `seq` that have not expired at `now`, oldest first, at most `limit`; and
    /// the position of the last row read (`seq` when none).
    func objects(after seq: Int64, now: Int64, limit: Int) async throws -> (objects: [StoredObject], last: Int64)
    /// The records `query` reads: one client token's of one kind, unexpired, in its order after its cursor, at
    /// most its limit.
    func list(_ query: ObjectListQuery) async throws -> [StoredObject]
    /// Deletes the records expired at `now`; returns how many.
    func deleteExpired(now: Int64) async throws -> Int

    /// The records `filter` matches, newest first, `limit` from `offset`; and how many match in all.
    func page(_ filter: ObjectFilter, limit: Int, offset: Int) async throws -> (objects: [StoredObject], total: Int)
    /// How many records each key and each token has.
    func counts() async throws -> ObjectCounts
    /// Drops the record of `id` and moves the generation (at `now`); returns the record, nil when there was none.
    func revoke(id: String, now: Int64) async throws -> StoredObject?
    /// Drops every record of key `keyID` and moves the generation when there were any; returns how many.
    func revoke(keyID: Int64, now: Int64) async throws -> Int
    /// Moves every record of key `from` to key `to` and moves the generation when there were any; returns how many.
    func reassign(from: Int64, to: Int64, now: Int64) async throws -> Int
    /// The current generation of operator changes.
    func generation() async throws -> ObjectGeneration
}
