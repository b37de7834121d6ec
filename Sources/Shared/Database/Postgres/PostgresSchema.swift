import Logging
import PostgresNIO

/// The PostgreSQL schema, as ordered migrations equivalent to SQLite's `Schema`; whichever supervisor starts
/// first runs them under an advisory lock, every other process only checks them.
public enum PostgresSchema {
    /// One migration: a version, a name, and statements run in one transaction.
    struct Migration: Sendable {
        /// 1, 2, …: `schema_migrations.version` once applied.
        let version: Int
        /// What it adds.
        let name: String
        /// One statement each (the extended protocol takes one at a time).
        let statements: [String]
    }

    /// Every migration, oldest first. Never edit a shipped migration: add a new one.
    static let migrations: [Migration] = [version1, version2, version3, version4, version5, version6, version7]

    /// The newest version this binary knows.
    public static var latestVersion: Int { migrations.last!.version }

    /// The `pg_advisory_lock` key migrations run under ("op-migra" in ASCII), so supervisors starting
    /// together migrate one after the other.
    static let migrationLock: Int64 = 0x6f70_2d6d_6967_7261

    /// Why the database cannot be used by this binary.
    public enum VersionError: Error, Equatable, CustomStringConvertible {
        /// Fewer migrations have run than this binary needs (a child started before the supervisor migrated).
        case notMigrated(location: String, found: Int, needed: Int)
        /// The schema is newer than this binary: another host runs a newer openai-proxy.
        case newerSchema(location: String, found: Int, known: Int)

        public var description: String {
            switch self {
            case .notMigrated(let location, let found, let needed):
                return "database \(location) is at schema version \(found), this openai-proxy needs \(needed); "
                    + "start `openai-proxy serve` first"
            case .newerSchema(let location, let found, let known):
                return "database \(location) is at schema version \(found), newer than this openai-proxy knows "
                    + "(\(known)): run the newer openai-proxy"
            }
        }
    }

    /// Applies every migration not applied yet, each in its own transaction, holding the advisory lock
    /// throughout; refuses a schema newer than this binary.
    public static func migrate(_ database: PostgresProxyDatabase) async throws {
        try await database.connection { connection in
            let logger = database.logger
            try await connection.query("SELECT pg_advisory_lock(\(migrationLock))", logger: logger)
            do {
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                    """, logger: logger)
                let applied = try await appliedVersion(connection, logger: logger)
                guard applied <= latestVersion else {
                    throw VersionError.newerSchema(
                        location: database.location.description, found: applied, known: latestVersion)
                }
                for migration in migrations where migration.version > applied {
                    try await connection.withTransaction(logger: logger) { connection in
                        for statement in migration.statements {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await connection.query(
                            "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                            logger: logger)
                    }
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
        }
    }

    /// Throws unless the schema is exactly at this binary's version.
    public static func check(_ database: PostgresProxyDatabase) async throws {
        let applied = try await database.connection { connection in
            let logger = database.logger
            let rows = try await connection.query(
                "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger)
            for try await exists in rows.decode(Bool.self) where !exists { return 0 }
            return try await appliedVersion(connection, logger: logger)
        }
        let location = database.location.description
        if applied > latestVersion {
            throw VersionError.newerSchema(location: location, found: applied, known: latestVersion)
        }
        if applied < latestVersion {
            throw VersionError.notMigrated(location: location, found: applied, needed: latestVersion)
        }
    }

    private static func appliedVersion(_ connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", logger: logger)
        for try await version in rows.decode(Int.self) { return version }
        return 0
    }
}
