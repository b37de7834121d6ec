import GRDB

extension Schema {
    /// v11: operators revoke and reassign object records (issue 14, item 2).
    ///
    /// Workers read new `objects` rows by `seq`, which never shows a row changed or deleted in place; the one
    /// `object_generation` row moves with every such change, and a worker that sees it move reloads its
    /// records. Changes are rare operator acts, so a whole reload costs less than a change log every insert
    /// would pay for. `changed_at` lets a worker keep the records it learned itself after the change, before
    /// the collector wrote them. The key and token indexes serve the admin's filters, counts and bulk changes.
    static func createVersion11(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE object_generation (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    generation INTEGER NOT NULL,
                    changed_at INTEGER NOT NULL
                );
                INSERT INTO object_generation (id, generation, changed_at) VALUES (1, 0, 0);
                CREATE INDEX objects_key_id ON objects (key_id);
                CREATE INDEX objects_token_id ON objects (token_id);
                """)
    }
}
