import GRDB

extension Schema {
    /// v8: the secret check, one value sealed under the installation's secret beside the keys it seals, so a
    /// start with another secret is refused at once (`SecretCheck`) instead of serving with keys it cannot open.
    static func createVersion8(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE secret_check (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    sealed_value TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                """)
    }
}
