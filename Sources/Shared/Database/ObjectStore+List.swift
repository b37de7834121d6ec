import GRDB

/// The records a list endpoint shows, on SQLite.
extension ObjectStore {
    public func list(_ query: ObjectListQuery) async throws -> [StoredObject] {
        // Row values compare as a list endpoint orders: by creation time, then id. The index
        // `objects_token_kind_created` (v12) serves the condition and the order alike.
        let comparison = query.newestFirst ? "<" : ">"
        let direction = query.newestFirst ? "DESC" : "ASC"
        var sql = "SELECT \(Self.columns) FROM objects WHERE token_id = ? AND kind = ? AND expires_at > ?"
        var arguments: StatementArguments = [query.tokenID, query.kind, query.now]
        if let after = query.after {
            sql += " AND (created_at, object_id) \(comparison) (?, ?)"
            arguments += [after.createdAt, after.id]
        }
        sql += " ORDER BY created_at \(direction), object_id \(direction) LIMIT ?"
        arguments += [query.limit]
        let bound = arguments
        let statement = sql
        return try await database.pool.read { db in
            try Row.fetchAll(db, sql: statement, arguments: bound).map(Self.object)
        }
    }
}
