import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing

@testable import Shared

/// PostgreSQL's migrations: the same tables and columns as SQLite's, run once under the advisory lock, and
/// the version check.
@Suite("PostgreSQL schema", .enabled(if: PostgresTestCluster.skipReason == nil))
struct PostgresSchemaTests {
    private static let logger = Logger(label: "test.postgres")

    private static func columns(_ database: PostgresProxyDatabase) async throws -> [String: Set<String>] {
        try await database.connection { connection in
            let rows = try await connection.query(
                """
                SELECT table_name::text, column_name::text FROM information_schema.columns
                WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
                """, logger: logger)
            var tables: [String: Set<String>] = [:]
            for try await (table, column) in rows.decode((String, String).self) {
                tables[table, default: []].insert(column)
            }
            return tables
        }
    }

    private static func versions(_ database: PostgresProxyDatabase) async throws -> [Int] {
        try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT version FROM schema_migrations ORDER BY version", logger: logger)
            var versions: [Int] = []
            for try await version in rows.decode(Int.self) { versions.append(version) }
            return versions
        }
    }

    @Test("migrating creates every table and column SQLite's schema has, and nothing else")
    func sameTablesAsSQLite() async throws {
        let directory = TemporaryDirectory()
        let sqlite = try ProxyDatabase.open(at: directory.file("schema.db"), migrate: true)
        let expected = try await sqlite.pool.read { db in
            var tables: [String: Set<String>] = [:]
            let names = try String.fetchAll(
                db,
                sql: """
                    SELECT name FROM sqlite_master WHERE type = 'table'
                    AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'
                    """)
            for name in names { tables[name] = Set(try db.columns(in: name).map(\.name)) }
            return tables
        }
        try await PostgresTestCluster.withFreshDatabase { location in
            try await PostgresProxyDatabase.withRunning(location, logger: Self.logger) { database in
                try await PostgresSchema.migrate(database)
                let created = try await Self.columns(database)
                #expect(created.keys.sorted() == expected.keys.sorted())
                for (table, columns) in expected {
                    #expect(created[table] == columns, "\(table)")
                }
            }
        }
    }

    @Test("supervisors migrating at once: the lock lets one apply each migration, the others find it done")
    func concurrentMigrations() async throws {
        try await PostgresTestCluster.withFreshDatabase { location in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        try await PostgresProxyDatabase.withRunning(location, logger: Self.logger) { database in
                            try await PostgresSchema.migrate(database)
                            try await PostgresSchema.check(database)
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await PostgresProxyDatabase.withRunning(location, logger: Self.logger) { database in
                let versions = try await Self.versions(database)
                #expect(versions == Array(1...PostgresSchema.latestVersion))
            }
        }
    }

    @Test("the version check: an unmigrated database and a newer schema are refused with one clear line")
    func versionCheck() async throws {
        try await PostgresTestCluster.withFreshDatabase { location in
            try await PostgresProxyDatabase.withRunning(location, logger: Self.logger) { database in
                let latest = PostgresSchema.latestVersion
                let shown = location.description
                await #expect(
                    throws: PostgresSchema.VersionError.notMigrated(location: shown, found: 0, needed: latest)
                ) {
                    try await PostgresSchema.check(database)
                }
                try await PostgresSchema.migrate(database)
                try await PostgresSchema.check(database)
                // A newer binary on another host migrated further.
                try await database.connection { connection in
                    _ = try await connection.query(
                        "INSERT INTO schema_migrations (version, name) VALUES (\(latest + 1), 'from the future')",
                        logger: Self.logger)
                }
                let newer = PostgresSchema.VersionError.newerSchema(location: shown, found: latest + 1, known: latest)
                await #expect(throws: newer) { try await PostgresSchema.check(database) }
                await #expect(throws: newer) { try await PostgresSchema.migrate(database) }
                #expect(!newer.description.contains("\n"))
                #expect(newer.description.contains("newer than this openai-proxy knows"))
                #expect(!newer.description.contains(location.password ?? "no password"))
            }
        }
    }
}
