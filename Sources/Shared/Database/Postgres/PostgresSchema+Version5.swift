extension PostgresSchema {
    /// v5: SQLite's v11, the generation of operator changes to object records (see `Schema.createVersion11`).
    static let version5 = Migration(
        version: 5, name: "v5: operators revoke and reassign object records",
        statements: [
            """
            CREATE TABLE object_generation (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                generation BIGINT NOT NULL,
                changed_at BIGINT NOT NULL
            )
            """,
            "INSERT INTO object_generation (id, generation, changed_at) VALUES (1, 0, 0)",
            "CREATE INDEX objects_key_id ON objects (key_id)",
            "CREATE INDEX objects_token_id ON objects (token_id)",
        ])
}
