import GRDB

extension Schema {
    /// v9: the OpenAI objects created through the gateway (`StoredObject`), so that a request naming one goes to
    /// the key whose account holds it, and only the client token that created it may name it.
    ///
    /// `seq` orders the rows as they were written: workers poll for rows past the last they saw. The key and
    /// token are plain ids, not foreign keys: removing a key must keep its objects' rows, so that requests for
    /// them get a 409 naming the reason instead of going to another key's account.
    static func createVersion9(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE objects (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    object_id TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL,
                    key_id INTEGER NOT NULL,
                    token_id INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                CREATE INDEX objects_expires_at ON objects (expires_at);
                """)
    }
}
