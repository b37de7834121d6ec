import GRDB

/// The shared round-robin position on SQLite: one row, advanced atomically so every worker draws distinct
/// positions.
public struct RotationCursor: RotationCursorLeasing {
    /// The shared database.
    public let database: ProxyDatabase

    /// A cursor in `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    public func lease(_ count: Int) async throws -> Range<Int64> {
        let end = try await database.pool.write { db in
            try Int64.fetchOne(
                db, sql: "UPDATE rotation_cursor SET position = position + ? WHERE id = 1 RETURNING position",
                arguments: [count])
        }
        guard let end else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "rotation_cursor row is missing")
        }
        return (end - Int64(count))..<end
    }
}
