import PostgresNIO

/// The records a list endpoint shows, on PostgreSQL.
extension PostgresObjectStore {
    public func list(_ query: ObjectListQuery) async throws -> [StoredObject] {
        // As on SQLite: row values in list order, served by the index `objects_token_kind_created` (v6). Ids
        // compare byte by byte (`COLLATE "C"`), as SQLite and Swift compare them, whatever the database's locale.
        let comparison = query.newestFirst ? "<" : ">"
        let direction = query.newestFirst ? "DESC" : "ASC"
        var sql: PostgresQuery = """
            SELECT 0::BIGINT, \(unescaped: Self.columns) FROM objects
            WHERE token_id = \(query.tokenID) AND kind = \(query.kind) AND expires_at > \(query.now)
            """
        if let after = query.after {
            let first = sql.binds.count + 1
            sql.sql += #" AND (created_at, object_id COLLATE "C") \#(comparison) ($\#(first), $\#(first + 1))"#
            sql.binds.append(after.createdAt)
            sql.binds.append(after.id)
        }
        sql.sql +=
            #" ORDER BY created_at \#(direction), object_id COLLATE "C" \#(direction) LIMIT $\#(sql.binds.count + 1)"#
        sql.binds.append(Int64(query.limit))
        let statement = sql
        return try await database.connection { connection in
            let rows = try await connection.query(statement, logger: database.logger)
            return try await Self.objects(rows).map(\.object)
        }
    }
}
