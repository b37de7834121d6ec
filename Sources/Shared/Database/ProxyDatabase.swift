import Foundation
import GRDB

/// The one SQLite database (WAL) every process shares.
public struct ProxyDatabase: Sendable {
    /// The GRDB pool: one writer, concurrent readers.
    public let pool: DatabasePool

    /// Why the database could not be used.
    public enum OpenError: Error, CustomStringConvertible {
        /// The schema has not been migrated (a child started before the supervisor migrated it).
        case notMigrated(path: String)
        /// The file was written by a newer openai-proxy.
        case newerSchema(path: String)

        public var description: String {
            switch self {
            case .notMigrated(let path): return "database \(path) is not migrated; start `openai-proxy serve` first"
            case .newerSchema(let path): return "database \(path) was created by a newer openai-proxy"
            }
        }
    }

    /// Opens (creating when missing) the database at `path`; migrates it when `migrate` is true,
    /// else checks that every migration has run.
    public static func open(at path: String, migrate: Bool) throws -> ProxyDatabase {
        let pool = try DatabasePool(path: path, configuration: configuration())
        let migrator = Schema.migrator
        if migrate {
            try migrator.migrate(pool)
        }
        try pool.read { db in
            if try migrator.hasBeenSuperseded(db) { throw OpenError.newerSchema(path: path) }
            if try !migrator.hasCompletedMigrations(db) { throw OpenError.notMigrated(path: path) }
        }
        return ProxyDatabase(pool: pool)
    }

    /// Connection settings shared by every process.
    static func configuration() -> Configuration {
        var configuration = Configuration()
        // SQLite's own busy handler sleeps on a 1…100 ms ladder, which stalled contending processes
        // for seconds (NOTES.md); a short, growing spin keeps the worst wait in tens of milliseconds.
        configuration.busyMode = .callback { tries in
            let micros = tries < 5 ? 50 << tries : 1000
            usleep(useconds_t(micros))
            return tries < 10_000
        }
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        return configuration
    }
}
