/// One read of a client token's records of one kind for a list endpoint (`GET /v1/files` …): the records in
/// list order from a cursor, so that a list shows the token's own objects only.
public struct ObjectListQuery: Sendable, Equatable {
    /// A place in list order: the record a page continues from, itself excluded.
    public struct Cursor: Sendable, Equatable {
        /// The record's creation time, in Unix milliseconds.
        public var createdAt: Int64
        /// The record's object id (orders records created in the same millisecond).
        public var id: String

        /// A cursor at the record created at `createdAt` with `id`.
        public init(createdAt: Int64, id: String) {
            self.createdAt = createdAt
            self.id = id
        }

        /// The cursor at `object`.
        public init(_ object: StoredObject) {
            self.init(createdAt: object.createdAt, id: object.id)
        }
    }

    /// The client token whose records are read.
    public var tokenID: Int64
    /// The records' `object` kind (`file`, `batch` …).
    public var kind: String
    /// Newest first (by creation time, then id); false: oldest first.
    public var newestFirst: Bool
    /// Read only records after this one in that order; nil: from the start.
    public var after: Cursor?
    /// The most records read.
    public var limit: Int
    /// Records expired at this time (Unix milliseconds) are left out.
    public var now: Int64

    /// Whether `first` comes before `second` in this read's order: by creation time, then by id byte by byte (as
    /// the stores order them).
    public func orders(_ first: Cursor, before second: Cursor) -> Bool {
        let ascending =
            first.createdAt != second.createdAt
            ? first.createdAt < second.createdAt
            : first.id.utf8.lexicographicallyPrecedes(second.id.utf8)
        guard first != second else { return false }
        return newestFirst ? !ascending : ascending
    }

    /// Whether this read shows `object`: the token's, of the kind, live at `now`, past the cursor.
    public func shows(_ object: StoredObject) -> Bool {
        guard object.tokenID == tokenID, object.kind == kind, object.expiresAt > now else { return false }
        guard let after else { return true }
        return orders(after, before: Cursor(object))
    }

    /// A read with every field given.
    public init(tokenID: Int64, kind: String, newestFirst: Bool, after: Cursor?, limit: Int, now: Int64) {
        self.tokenID = tokenID
        self.kind = kind
        self.newestFirst = newestFirst
        self.after = after
        self.limit = limit
        self.now = now
    }
}
