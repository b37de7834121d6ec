import GRDB

/// What operators do with the records on SQLite: list, count, revoke, reassign.
extension ObjectStore {
    public func page(
        _ filter: ObjectFilter, limit: Int, offset: Int
    ) async throws -> (
        objects: [StoredObject], total: Int
    ) {
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let token = filter.tokenID {
            conditions.append("token_id = ?")
            arguments += [token]
        }
        if let key = filter.keyID {
            conditions.append("key_id = ?")
            arguments += [key]
        }
        if let kind = filter.kind {
            conditions.append("kind = ?")
            arguments += [kind]
        }
        let clause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let bound = arguments
        return try await database.pool.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM objects \(clause)", arguments: bound) ?? 0
            let rows = try Row.fetchAll(
                db,
                sql:
                    "SELECT \(Self.columns) FROM objects \(clause) ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
                arguments: bound + [limit, offset])
            return (rows.map(Self.object), total)
        }
    }

    public func counts() async throws -> ObjectCounts {
        try await database.pool.read { db in
            func grouped(_ column: String) throws -> [Int64: Int] {
                var counts: [Int64: Int] = [:]
                let rows = try Row.fetchCursor(db, sql: "SELECT \(column), COUNT(*) FROM objects GROUP BY \(column)")
                while let row = try rows.next() { counts[row[0]] = row[1] }
                return counts
            }
            return ObjectCounts(byKey: try grouped("key_id"), byToken: try grouped("token_id"))
        }
    }

    public func revoke(id: String, now: Int64) async throws -> StoredObject? {
        try await database.pool.write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "DELETE FROM objects WHERE object_id = ? RETURNING \(Self.columns)", arguments: [id])
            else { return nil }
            try Self.moveGeneration(db, now: now)
            return Self.object(row)
        }
    }

    public func revoke(keyID: Int64, now: Int64) async throws -> Int {
        try await changing(now: now, sql: "DELETE FROM objects WHERE key_id = ?", arguments: [keyID])
    }

    public func reassign(from: Int64, to: Int64, now: Int64) async throws -> Int {
        try await changing(now: now, sql: "UPDATE objects SET key_id = ? WHERE key_id = ?", arguments: [to, from])
    }

    public func generation() async throws -> ObjectGeneration {
        try await database.pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT generation, changed_at FROM object_generation WHERE id = 1")
            return ObjectGeneration(generation: row?["generation"] ?? 0, changedAt: row?["changed_at"] ?? 0)
        }
    }

    /// Runs one change to existing records and moves the generation with it when it changed any.
    private func changing(now: Int64, sql: String, arguments: StatementArguments) async throws -> Int {
        try await database.pool.write { db in
            try db.execute(sql: sql, arguments: arguments)
            let changed = db.changesCount
            if changed > 0 { try Self.moveGeneration(db, now: now) }
            return changed
        }
    }

    private static func moveGeneration(_ db: Database, now: Int64) throws {
        try db.execute(
            sql: "UPDATE object_generation SET generation = generation + 1, changed_at = ? WHERE id = 1",
            arguments: [now])
    }
}
