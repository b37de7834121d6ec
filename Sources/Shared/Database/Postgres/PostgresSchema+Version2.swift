extension PostgresSchema {
    /// v2: SQLite's v8, the secret check (see `Schema.createVersion8`).
    static let version2 = Migration(
        version: 2, name: "v2: the secret check",
        statements: [
            """
            CREATE TABLE secret_check (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                sealed_value TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """
        ])
}
