import Foundation
import GRDB
import Logging
import PostgresNIO

@testable import AdminServer
@testable import Shared
@testable import StatsCollector

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

/// One `key_events` row.
struct KeyEvent: Equatable, Sendable {
    let key: Int64
    let from: String
    let to: String
    let reason: String
}

/// The stores of one engine over one database, and what a test reads beside them.
struct EngineStores: Sendable {
    /// The secret the keys' values are sealed with in tests.
    static let testBox = SecretBox(secret: "test-secret-0123456789")

    /// The `models` table.
    let models: any ModelStoring
    /// The upstream keys, sealed with `box`.
    let keys: any KeyStoring
    /// What the keys' values are sealed with.
    let box: SecretBox
    /// The `key_events` rows as (key, from, to), oldest first.
    let keyEvents: @Sendable () async throws -> [KeyEvent]
    /// Key health, under the default policy.
    let health: any KeyHealthStoring
    /// The client tokens.
    let tokens: any TokenStoring
    /// The live settings' overrides.
    let settings: any SettingsStoring
    /// The secret check.
    let secretCheck: any SecretCheckStoring
    /// The objects created through the gateway.
    let objects: any ObjectStoring
    /// The collector's writes and the retention job's deletes.
    let usage: any UsageStoring
    /// The operators' login sessions.
    let sessions: any AdminSessionStoring
    /// The audit log.
    let audit: any AuditLogging
    /// The chat history as the console writes and reads it.
    let chat: any ChatHistoryStoring
    /// The shared round-robin position.
    let cursor: any RotationCursorLeasing
    /// What workers read to route.
    let pool: any PoolStateReading
    /// What the admin API's statistics, request-log and metrics routes read.
    let reading: any AdminReading
    /// The factory every process opens, over the same database.
    let storeSet: StoreSet
    /// Client tokens' per-minute request counts.
    var rateWindows: any TokenRateWindowing { storeSet.rateWindows }
    /// Client tokens' quota reservations.
    var quotaReservations: any TokenQuotaReserving { storeSet.quotaReservations }
    /// The `least_used` strategy's pick counts.
    var leastUsed: any LeastUsedPicking { storeSet.leastUsedPicks }
    /// The pool generation workers reload on.
    let generation: @Sendable () async throws -> Int64
    /// The audit log's actions, oldest first.
    let auditActions: @Sendable () async throws -> [String]
    /// Runs one statement of SQL both engines read the same, as another process would.
    let execute: @Sendable (String) async throws -> Void
    /// The first column of the first row of a query both engines read the same, as an integer (nil for NULL).
    let integer: @Sendable (String) async throws -> Int64?

    init(sqlite database: ProxyDatabase) {
        models = ModelStore(database: database)
        box = EngineStores.testBox
        keys = KeyStore(database: database, box: box)
        health = KeyHealthStore(database: database, policy: KeyHealthPolicy(), logger: Logger(label: "test.health"))
        tokens = TokenStore(database: database)
        keyEvents = {
            try await database.pool.read { db in
                try Row.fetchAll(db, sql: "SELECT key_id, from_status, to_status, reason FROM key_events ORDER BY id")
                    .map {
                        KeyEvent(key: $0["key_id"], from: $0["from_status"], to: $0["to_status"], reason: $0["reason"])
                    }
            }
        }
        settings = SettingsStore(database: database)
        secretCheck = SecretCheckStore(database: database)
        objects = ObjectStore(database: database)
        usage = UsageStore(database: database)
        sessions = AdminSessionStore(database: database)
        audit = AuditLog(database: database)
        chat = ChatHistoryStore(database: database)
        cursor = RotationCursor(database: database)
        pool = PoolStateStore(database: database)
        reading = StatsReader(database: database)
        storeSet = StoreSet(sqlite: database)
        execute = { sql in try await database.pool.write { db in try db.execute(sql: sql) } }
        integer = { sql in try await database.pool.read { db in try Int64.fetchOne(db, sql: sql) } }
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
        box = EngineStores.testBox
        keys = PostgresKeyStore(database: database, box: box)
        health = PostgresKeyHealthStore(
            database: database, policy: KeyHealthPolicy(), logger: Logger(label: "test.health"))
        tokens = PostgresTokenStore(database: database)
        keyEvents = {
            try await database.connection { connection in
                let rows = try await connection.query(
                    "SELECT key_id, from_status, to_status, reason FROM key_events ORDER BY id", logger: database.logger
                )
                var events: [KeyEvent] = []
                for try await (key, from, to, reason) in rows.decode((Int64, String, String, String).self) {
                    events.append(KeyEvent(key: key, from: from, to: to, reason: reason))
                }
                return events
            }
        }
        settings = PostgresSettingsStore(database: database)
        secretCheck = PostgresSecretCheckStore(database: database)
        objects = PostgresObjectStore(database: database)
        usage = PostgresUsageStore(database: database)
        sessions = PostgresAdminSessionStore(database: database)
        audit = PostgresAuditLog(database: database)
        chat = PostgresChatHistoryStore(database: database)
        cursor = PostgresRotationCursor(database: database)
        pool = PostgresPoolStateStore(database: database)
        reading = PostgresStatsReader(database: database)
        storeSet = StoreSet(postgresql: database)
        generation = {
            try await database.connection { connection in
                var generation: Int64 = -1
                let rows = try await connection.query("SELECT generation FROM pool_generation", logger: database.logger)
                for try await value in rows.decode(Int64.self) { generation = value }
                return generation
            }
        }
        execute = { sql in
            try await database.connection { connection in
                _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: database.logger)
            }
        }
        integer = { sql in
            try await database.connection { connection in
                let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: database.logger)
                for try await value in rows.decode(Int64?.self) { return value }
                return nil
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
