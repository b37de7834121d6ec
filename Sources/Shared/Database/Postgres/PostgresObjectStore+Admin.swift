import PostgresNIO

/// What operators do with the records on PostgreSQL; behaves as `ObjectStore`'s on SQLite.
extension PostgresObjectStore {
    public func page(
        _ filter: ObjectFilter, limit: Int, offset: Int
    ) async throws -> (
        objects: [StoredObject], total: Int
    ) {
        // A NULL parameter matches every row, so one statement serves every filter.
        return try await database.connection { connection in
            let token = filter.tokenID
            let key = filter.keyID
            let kind = filter.kind
            let totals = try await connection.query(
                """
                SELECT COUNT(*) FROM objects WHERE (\(token)::BIGINT IS NULL OR token_id = \(token))
                AND (\(key)::BIGINT IS NULL OR key_id = \(key)) AND (\(kind)::TEXT IS NULL OR kind = \(kind))
                """, logger: database.logger)
            var total = 0
            for try await count in totals.decode(Int64.self) { total = Int(count) }
            let rows = try await connection.query(
                """
                SELECT seq, \(unescaped: Self.columns) FROM objects WHERE (\(token)::BIGINT IS NULL OR token_id = \(token))
                AND (\(key)::BIGINT IS NULL OR key_id = \(key)) AND (\(kind)::TEXT IS NULL OR kind = \(kind))
                ORDER BY created_at DESC, seq DESC LIMIT \(limit) OFFSET \(offset)
                """, logger: database.logger)
            return (try await Self.objects(rows).map(\.object), total)
        }
    }

    public func counts() async throws -> ObjectCounts {
        try await database.connection { connection in
            func grouped(_ column: String) async throws -> [Int64: Int] {
                var counts: [Int64: Int] = [:]
                let rows = try await connection.query(
                    "SELECT \(unescaped: column), COUNT(*) FROM objects GROUP BY \(unescaped: column)",
                    logger: database.logger)
                for try await (id, count) in rows.decode((Int64, Int64).self) { counts[id] = Int(count) }
                return counts
            }
            return ObjectCounts(byKey: try await grouped("key_id"), byToken: try await grouped("token_id"))
        }
    }

    public func revoke(id: String, now: Int64) async throws -> StoredObject? {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "DELETE FROM objects WHERE object_id = \(id) RETURNING seq, \(unescaped: Self.columns)",
                logger: database.logger)
            guard let revoked = try await Self.objects(rows).first?.object else { return nil }
            try await moveGeneration(connection, now: now)
            return revoked
        }
    }

    public func revoke(keyID: Int64, now: Int64) async throws -> Int {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "DELETE FROM objects WHERE key_id = \(keyID) RETURNING seq", logger: database.logger)
            return try await countAndMove(rows, connection, now: now)
        }
    }

    public func reassign(from: Int64, to: Int64, now: Int64) async throws -> Int {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "UPDATE objects SET key_id = \(to) WHERE key_id = \(from) RETURNING seq", logger: database.logger)
            return try await countAndMove(rows, connection, now: now)
        }
    }

    public func generation() async throws -> ObjectGeneration {
        try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT generation, changed_at FROM object_generation WHERE id = 1", logger: database.logger)
            var generation = ObjectGeneration(generation: 0, changedAt: 0)
            for try await (value, at) in rows.decode((Int64, Int64).self) {
                generation = ObjectGeneration(generation: value, changedAt: at)
            }
            return generation
        }
    }

    /// Counts the rows a change returned and moves the generation when there were any.
    private func countAndMove(
        _ rows: PostgresRowSequence, _ connection: PostgresConnection, now: Int64
    ) async throws
        -> Int
    {
        var changed = 0
        for try await _ in rows.decode(Int64.self) { changed += 1 }
        if changed > 0 { try await moveGeneration(connection, now: now) }
        return changed
    }

    private func moveGeneration(_ connection: PostgresConnection, now: Int64) async throws {
        try await connection.query(
            "UPDATE object_generation SET generation = generation + 1, changed_at = \(now) WHERE id = 1",
            logger: database.logger)
    }
}
