import Foundation
import GRDB
import Logging
import PostgresNIO

@testable import Shared

/// A database engine the store suites run against; every store test takes one as its argument.
enum StoreEngine: String, CustomStringConvertible, CaseIterable, Sendable {
    case sqlite
    case postgresql

    /// The engines this test run covers: both, or SQLite alone where `PostgresTestCluster.skipReason` says why.
    static var tested: [StoreEngine] {
        PostgresTestCluster.skipReason == nil ? allCases : [.sqlite]
    }

    var description: String { rawValue }

    /// Runs `body` with the stores over a fresh, migrated database of this engine.
    func withStores<Result: Sendable>(_ body: (EngineStores) async throws -> Result) async throws -> Result {
        switch self {
        case .sqlite:
            let directory = TemporaryDirectory()
            let database = try ProxyDatabase.open(at: directory.file("stores.db"), migrate: true)
            return try await body(EngineStores(sqlite: database))
        case .postgresql:
            return try await PostgresTestCluster.withFreshDatabase { location in
                try await PostgresProxyDatabase.withRunning(location, logger: Logger(label: "test.postgres")) {
                    database in
                    try await PostgresSchema.migrate(database)
                    return try await body(EngineStores(postgresql: database))
                }
            }
        }
    }
}

/// The stores of one engine over one database, and what a test reads beside them.
struct EngineStores: Sendable {
    /// The `models` table.
    let models: any ModelStoring
    /// The client tokens.
    let tokens: any TokenStoring
    /// The live settings' overrides.
    let settings: any SettingsStoring
    /// The pool generation workers reload on.
    let generation: @Sendable () async throws -> Int64
    /// The audit log's actions, oldest first.
    let auditActions: @Sendable () async throws -> [String]

    init(sqlite database: ProxyDatabase) {
        models = ModelStore(database: database)
        tokens = TokenStore(database: database)
        settings = SettingsStore(database: database)
        generation = {
            try await database.pool.read { db in try Int64.fetchOne(db, sql: "SELECT generation FROM pool_generation")!
            }
        }
        auditActions = {
            try await database.pool.read { db in
                try String.fetchAll(db, sql: "SELECT action FROM audit_log ORDER BY id")
            }
        }
    }

    init(postgresql database: PostgresProxyDatabase) {
        models = PostgresModelStore(database: database)
        tokens = PostgresTokenStore(database: database)
        settings = PostgresSettingsStore(database: database)
        generation = {
            try await database.connection { connection in
                var generation: Int64 = -1
                let rows = try await connection.query("SELECT generation FROM pool_generation", logger: database.logger)
                for try await value in rows.decode(Int64.self) { generation = value }
                return generation
            }
        }
        auditActions = {
            try await database.connection { connection in
                var actions: [String] = []
                let rows = try await connection.query(
                    "SELECT action FROM audit_log ORDER BY id", logger: database.logger)
                for try await action in rows.decode(String.self) { actions.append(action) }
                return actions
            }
        }
    }
}
