import GRDB

extension Schema {
    /// v12: list endpoints show a client token's own objects (issue 14, item 2).
    ///
    /// `GET /v1/files` and its kin read one token's records of one kind in creation order from a cursor
    /// (`ObjectStoring.list`); this index serves that condition and order without a sort. It leads with
    /// `token_id`, so it also serves the admin's token filter, and v11's `objects_token_id` goes.
    static func createVersion12(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE INDEX objects_token_kind_created ON objects (token_id, kind, created_at, object_id);
                DROP INDEX objects_token_id;
                """)
    }
}
