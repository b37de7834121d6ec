import GRDB

extension Schema {
    /// v6: requests refused before a token was known, counted per minute instead of a request-log row
    /// each; and the reservations that keep parallel requests from overshooting a client token's quota.
    static func createVersion6(_ db: Database) throws {
        try db.execute(
            sql: """
                -- Per minute (Unix ms at its start), reason and worker process (source): the running total the
                -- worker sent last; the largest is kept, so a count sent twice counts once. No path is stored.
                CREATE TABLE refused_requests (
                    minute INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    source TEXT NOT NULL,
                    requests INTEGER NOT NULL,
                    PRIMARY KEY (minute, reason, source)
                ) WITHOUT ROWID;

                -- Tokens reserved by the requests in flight of client tokens with a quota; the collector
                -- deletes a request's row in the transaction that counts its usage.
                CREATE TABLE token_quota_reservations (
                    request_id TEXT PRIMARY KEY NOT NULL,
                    token_id INTEGER NOT NULL,
                    tokens INTEGER NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX token_quota_reservations_token ON token_quota_reservations (token_id);
                """)
    }
}
