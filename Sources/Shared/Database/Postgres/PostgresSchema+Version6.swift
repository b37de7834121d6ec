extension PostgresSchema {
    /// v6: SQLite's v12, the index list endpoints read a token's records by (see `Schema.createVersion12`).
    static let version6 = Migration(
        version: 6, name: "v6: list endpoints show a client token's own objects",
        statements: [
            // Ids in byte order (`COLLATE "C"`), as the list query compares them (`PostgresObjectStore.list`).
            #"CREATE INDEX objects_token_kind_created ON objects (token_id, kind, created_at, object_id COLLATE "C")"#,
            "DROP INDEX objects_token_id",
        ])
}
