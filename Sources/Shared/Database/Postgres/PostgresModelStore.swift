import Foundation
import PostgresNIO

/// The `models` table on PostgreSQL; behaves as `ModelStore` does on SQLite.
public struct PostgresModelStore: ModelStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// A store over `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    // `COLLATE "C"`: byte order, as SQLite's BINARY collation sorts, whatever the database's locale.
    /// The columns `entries(_:)` reads, in its order.
    static let columns = "model_name, description, capabilities, enabled, source, created_at, updated_at"

    public func list() async throws -> [ModelEntry] {
        try await database.connection { connection in
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT \(Self.columns) FROM models ORDER BY model_name COLLATE \"C\""),
                logger: database.logger)
            return try await Self.entries(rows)
        }
    }

    public func get(_ name: String) async throws -> ModelEntry? {
        try await database.connection { connection in
            try await Self.fetch(name, connection, database, lock: false)
        }
    }

    public func unknown(_ names: [String]) async throws -> [String] {
        let known = try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT model_name FROM models WHERE model_name = ANY(\(names))", logger: database.logger)
            var known: Set<String> = []
            for try await name in rows.decode(String.self) { known.insert(name) }
            return known
        }
        return names.filter { !known.contains($0) }
    }

    public func create(_ model: ModelEntry, audit: AuditEntry?) async throws {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO models (model_name, description, capabilities, enabled, source, created_at, updated_at)
                VALUES (\(model.name), \(model.description), \(model.capabilities), \(model.enabled), \(model.source),
                    \(model.createdAt), \(model.updatedAt))
                ON CONFLICT (model_name) DO NOTHING RETURNING model_name
                """, logger: database.logger)
            guard try await Self.count(rows) == 1 else { throw ModelStore.ChangeError.duplicate }
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
        }
    }

    public func update(
        _ name: String, audit: AuditEntry?, _ change: @escaping @Sendable (inout ModelEntry) -> Void
    ) async throws -> ModelEntry? {
        try await database.transaction { connection in
            guard var model = try await Self.fetch(name, connection, database, lock: true) else { return nil }
            change(&model)
            model.updatedAt = Date()
            try await connection.query(
                """
                UPDATE models SET model_name = \(model.name), description = \(model.description),
                    capabilities = \(model.capabilities), enabled = \(model.enabled), source = \(model.source),
                    created_at = \(model.createdAt), updated_at = \(model.updatedAt)
                WHERE model_name = \(name)
                """, logger: database.logger)
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
            return model
        }
    }

    public func remove(_ name: String, audit: AuditEntry?) async throws -> Bool {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "DELETE FROM models WHERE model_name = \(name) RETURNING model_name", logger: database.logger)
            guard try await Self.count(rows) == 1 else { return false }
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
            return true
        }
    }

    public func mergeUpstream(_ ids: [String], audit: AuditEntry?) async throws -> Int {
        let ids = Set(ids).sorted()
        let now = Date()
        return try await database.transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO models (model_name, source, created_at, updated_at)
                SELECT id, 'upstream', \(now), \(now) FROM unnest(\(ids)::text[]) AS id
                ON CONFLICT (model_name) DO NOTHING RETURNING model_name
                """, logger: database.logger)
            let added = try await Self.count(rows)
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
            return added
        }
    }

    private static func fetch(
        _ name: String, _ connection: PostgresConnection, _ database: PostgresProxyDatabase, lock: Bool
    ) async throws -> ModelEntry? {
        var query: PostgresQuery = "SELECT \(unescaped: columns) FROM models WHERE model_name = \(name)"
        if lock { query = "SELECT \(unescaped: columns) FROM models WHERE model_name = \(name) FOR UPDATE" }
        return try await entries(try await connection.query(query, logger: database.logger)).first
    }

    /// The models of rows of `columns`.
    static func entries(_ rows: PostgresRowSequence) async throws -> [ModelEntry] {
        var entries: [ModelEntry] = []
        for try await (name, description, capabilities, enabled, source, createdAt, updatedAt) in rows.decode(
            (String, String, String, Bool, String, Date, Date).self)
        {
            var entry = ModelEntry(name: name, description: description, enabled: enabled, source: source)
            entry.capabilities = capabilities
            entry.createdAt = createdAt
            entry.updatedAt = updatedAt
            entries.append(entry)
        }
        return entries
    }

    private static func count(_ rows: PostgresRowSequence) async throws -> Int {
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }
}
