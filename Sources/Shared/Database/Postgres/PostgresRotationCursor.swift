import PostgresNIO

/// The shared round-robin position on PostgreSQL; behaves as `RotationCursor` does on SQLite. The one row's
/// `UPDATE … RETURNING` is atomic: concurrent leases from every host wait on its row lock, one after the other.
public struct PostgresRotationCursor: RotationCursorLeasing {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// The cursor in `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    public func lease(_ count: Int) async throws -> Range<Int64> {
        let end = try await database.connection { connection -> Int64? in
            let rows = try await connection.query(
                "UPDATE rotation_cursor SET position = position + \(Int64(count)) WHERE id = 1 RETURNING position",
                logger: database.logger)
            var end: Int64?
            for try await position in rows.decode(Int64.self) { end = position }
            return end
        }
        guard let end else { throw PostgresStoreError.noRowReturned(table: "rotation_cursor") }
        return (end - Int64(count))..<end
    }
}
