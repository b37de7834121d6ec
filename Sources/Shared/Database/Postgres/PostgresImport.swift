import GRDB
import Logging
import PostgresNIO

/// `openai-proxy migrate --to postgresql://…`: copies a SQLite installation into an empty PostgreSQL
/// database in one transaction, then verifies the copy.
///
/// Every table both schemas have is copied column by column, as stored: key values stay sealed under the
/// installation's secret, client tokens stay hashes, statistics and logs are kept. The source is read from
/// one snapshot, so a copy taken while the service runs is consistent (rows written after it began are not
/// in it). Triggers are off while rows go in, so stored counters arrive as they were, and the identity
/// sequences continue after the copied ids.
public enum PostgresImport {
    /// Rows copied, per table, in copy order.
    public struct Report: Sendable, Equatable {
        /// (table, rows) in copy order.
        public var tables: [(name: String, rows: Int)] = []

        public static func == (lhs: Report, rhs: Report) -> Bool {
            lhs.tables.map(\.name) == rhs.tables.map(\.name) && lhs.tables.map(\.rows) == rhs.tables.map(\.rows)
        }
    }

    /// Why nothing was stored.
    public struct Failure: Error, CustomStringConvertible {
        /// One line for the operator.
        public let description: String
    }

    /// The tables that hold an installation's data: a target with rows in any of them is not empty.
    static let dataTables = ["keys", "client_tokens", "models", "usage_log", "chat_history", "audit_log"]

    /// Rows per INSERT statement (bounded by PostgreSQL's 65,535 parameters per statement).
    static let batchRows = 500

    /// Copies `source` into `target` (migrated first) and verifies every table's row count and largest id
    /// before the copy commits.
    public static func copy(from source: ProxyDatabase, to target: PostgresProxyDatabase) async throws -> Report {
        try await PostgresSchema.migrate(target)
        let snapshot = try source.pool.makeSnapshot()
        let sourceTables = try await snapshot.read { db in try tables(db) }
        let targetColumns = try await columns(of: target)
        if let missing = sourceTables.first(where: { targetColumns[$0.name] == nil }) {
            throw Failure(description: "table \(missing.name) has no counterpart in \(target.location)")
        }
        for table in sourceTables {
            let types = targetColumns[table.name] ?? [:]
            if let column = table.columns.first(where: { types[$0] == nil }) {
                throw Failure(description: "column \(table.name).\(column) has no counterpart in \(target.location)")
            }
        }
        try await requireEmpty(target)
        return try await target.transaction { connection in
            var report = Report()
            try await connection.query("SET LOCAL TIME ZONE 'UTC'", logger: target.logger)
            for table in sourceTables {
                let types = targetColumns[table.name] ?? [:]
                let copied = try await copyTable(table, types: types, from: snapshot, to: connection, target: target)
                report.tables.append((table.name, copied))
            }
            try await verify(snapshot: snapshot, sourceTables: sourceTables, connection: connection, target: target)
            return report
        }
    }

    /// A SQLite table: its name, columns in order, and whether rows have a `rowid` to page by.
    struct Table: Sendable {
        let name: String
        let columns: [String]
        let hasRowID: Bool
        let hasID: Bool
    }

    private static func tables(_ db: Database) throws -> [Table] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT name, sql FROM sqlite_master WHERE type = 'table'
                AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%' ORDER BY name
                """)
        return try rows.map { row in
            let name: String = row["name"]
            let sql: String = row["sql"] ?? ""
            let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(\(name.quotedDatabaseIdentifier))")
                .map { $0["name"] as String }
            return Table(
                name: name, columns: columns, hasRowID: !sql.uppercased().contains("WITHOUT ROWID"),
                hasID: columns.contains("id"))
        }
    }

    /// Each public table's columns and their types as PostgreSQL spells them (`format_type`).
    private static func columns(of target: PostgresProxyDatabase) async throws -> [String: [String: String]] {
        try await target.connection { connection in
            let rows = try await connection.query(
                """
                SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
                AND c.relname <> 'schema_migrations'
                """, logger: target.logger)
            var columns: [String: [String: String]] = [:]
            for try await (table, column, type) in rows.decode((String, String, String).self) {
                columns[table, default: [:]][column] = type
            }
            return columns
        }
    }

    private static func requireEmpty(_ target: PostgresProxyDatabase) async throws {
        let counts = try await target.connection { connection in
            var counts: [(String, Int64)] = []
            for table in dataTables {
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), logger: target.logger)
                for try await count in rows.decode(Int64.self) where count > 0 { counts.append((table, count)) }
            }
            return counts
        }
        guard counts.isEmpty else {
            let held = counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
            throw Failure(
                description:
                    "\(target.location) already holds data (\(held)): migrate copies into an empty database only")
        }
    }

    private static func copyTable(
        _ table: Table, types: [String: String], from snapshot: DatabaseSnapshot, to connection: PostgresConnection,
        target: PostgresProxyDatabase
    ) async throws -> Int {
        let logger = target.logger
        let name = table.name
        try await connection.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(name) DISABLE TRIGGER USER"), logger: logger)
        // The migration's own rows (the rotation cursor, the pool generation) give way to the copied ones.
        try await connection.query(PostgresQuery(unsafeSQL: "DELETE FROM \(name)"), logger: logger)
        let columnList = table.columns.map { "\"\($0)\"" }.joined(separator: ", ")
        let select = table.columns.map { $0.quotedDatabaseIdentifier }.joined(separator: ", ")
        var copied = 0
        var lastRowID: Int64 = .min
        while true {
            let after = lastRowID
            let offset = copied
            let page: [[DatabaseValue]] = try await snapshot.read { db in
                let rows: [Row]
                if table.hasRowID {
                    rows = try Row.fetchAll(
                        db,
                        sql: "SELECT rowid, \(select) FROM \(name.quotedDatabaseIdentifier) WHERE rowid > ? "
                            + "ORDER BY rowid LIMIT \(batchRows)", arguments: [after])
                } else {
                    rows = try Row.fetchAll(
                        db,
                        sql: "SELECT 0, \(select) FROM \(name.quotedDatabaseIdentifier) "
                            + "LIMIT \(batchRows) OFFSET \(offset)")
                }
                return rows.map { row in (0..<row.count).map { row[$0] as DatabaseValue } }
            }
            if page.isEmpty { break }
            if table.hasRowID, let last = page.last, case .int64(let rowID) = last[0].storage { lastRowID = rowID }
            var bindings = PostgresBindings(capacity: page.count * table.columns.count)
            var tuples: [String] = []
            tuples.reserveCapacity(page.count)
            for row in page {
                var placeholders: [String] = []
                for (index, column) in table.columns.enumerated() {
                    try bind(row[index + 1], to: &bindings, table: name, column: column)
                    placeholders.append("$\(bindings.count)::\(types[column] ?? "text")")
                }
                tuples.append("(" + placeholders.joined(separator: ", ") + ")")
            }
            let insert = "INSERT INTO \(name) (\(columnList)) VALUES " + tuples.joined(separator: ", ")
            try await connection.query(PostgresQuery(unsafeSQL: insert, binds: bindings), logger: logger)
            copied += page.count
            if page.count < batchRows { break }
        }
        try await connection.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(name) ENABLE TRIGGER USER"), logger: logger)
        if table.hasID {
            // Identity columns continue after the copied ids (a no-op for tables whose id is not one).
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT setval(pg_get_serial_sequence('\(name)', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL)
                        FROM \(name) WHERE pg_get_serial_sequence('\(name)', 'id') IS NOT NULL
                        """), logger: logger)
        }
        return copied
    }

    /// Binds one SQLite value as text, for the statement to cast to the column's type.
    private static func bind(
        _ value: DatabaseValue, to bindings: inout PostgresBindings, table: String, column: String
    ) throws {
        switch value.storage {
        case .null: bindings.appendNull()
        case .int64(let integer): bindings.append(String(integer))
        case .double(let double): bindings.append("\(double)")
        case .string(let text): bindings.append(text)
        case .blob:
            throw Failure(description: "\(table).\(column) holds binary data, which no column of this schema stores")
        }
    }

    /// Compares every table's row count and largest id with the snapshot the copy was read from, before the
    /// copy commits: a mismatch rolls it back.
    private static func verify(
        snapshot: DatabaseSnapshot, sourceTables: [Table], connection: PostgresConnection,
        target: PostgresProxyDatabase
    ) async throws {
        for table in sourceTables {
            let source = try await snapshot.read { db -> (Int64, Int64?) in
                let count = try Int64.fetchOne(db, sql: "SELECT count(*) FROM \(table.name.quotedDatabaseIdentifier)")
                let maxID =
                    table.hasID
                    ? try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM \(table.name.quotedDatabaseIdentifier)") : nil
                return (count ?? 0, maxID)
            }
            let idColumn = table.hasID ? "MAX(id)::bigint" : "NULL::bigint"
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT count(*), \(idColumn) FROM \(table.name)"), logger: target.logger)
            var copied: (Int64, Int64?) = (0, nil)
            for try await (count, maxID) in rows.decode((Int64, Int64?).self) { copied = (count, maxID) }
            guard copied == source else {
                throw Failure(
                    description: "verification failed: \(table.name) has \(copied.0) row(s) (largest id "
                        + "\(copied.1.map(String.init) ?? "-")) in \(target.location), \(source.0) "
                        + "(largest id \(source.1.map(String.init) ?? "-")) in SQLite; nothing was stored")
            }
        }
    }
}
