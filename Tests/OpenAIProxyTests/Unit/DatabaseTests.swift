import Foundation
import GRDB
import Testing

@testable import Shared

/// A migrated database in a fresh directory.
struct TestDatabase {
    let directory = TemporaryDirectory()
    let database: ProxyDatabase
    let box = SecretBox(secret: "test-secret-0123456789")

    init() throws {
        database = try ProxyDatabase.open(at: directory.file("test.db"), migrate: true)
    }

    var keys: KeyStore { KeyStore(database: database, box: box) }
    var tokens: TokenStore { TokenStore(database: database) }

    func generation() async throws -> Int64 {
        try await database.pool.read { db in try Int64.fetchOne(db, sql: "SELECT generation FROM pool_generation")! }
    }
}

@Suite("Database")
struct DatabaseTests {
    @Test("migrations create the seed's tables and columns, in WAL mode")
    func schema() async throws {
        let test = try TestDatabase()
        try await test.database.pool.read { db in
            #expect(try String.fetchOne(db, sql: "PRAGMA journal_mode") == "wal")
            let expected: [String: [String]] = [
                "keys": ["id", "key_value", "status", "created_at", "updated_at"],
                "usage_stats": ["key_id", "model", "usage_count", "last_used"],
                "models": ["model_name", "description", "capabilities"],
                "chat_history": ["key_id", "model", "request", "response", "timestamp"],
                "client_tokens": ["token_hash", "status"],
                "rotation_cursor": ["position"],
                "usage_log": ["request_id", "key_id", "token_id", "model", "status", "latency_ms", "ttfb_ms"],
                "usage_hourly": ["hour", "key_id", "model", "token_id", "requests", "prompt_tokens"],
            ]
            for (table, columns) in expected {
                let present = try db.columns(in: table).map(\.name)
                for column in columns { #expect(present.contains(column), "\(table).\(column)") }
            }
        }
        // Opening again (as a worker does) checks migrations without running them.
        _ = try ProxyDatabase.open(at: test.directory.file("test.db"), migrate: false)
        #expect(throws: ProxyDatabase.OpenError.self) {
            try ProxyDatabase.open(at: test.directory.file("fresh.db"), migrate: false)
        }
    }

    @Test("a v6 database migrates to v7: the unread indexes go, the rows and the indexes read by stay")
    func version7Migration() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v6.db")
        let indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'"
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(queue, upTo: Schema.version6Name)
            try await queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO usage_log (request_id, ts, worker, key_id, method, path, status, latency_ms)
                        VALUES ('r1', 1700000000000, 0, 1, 'POST', '/v1/chat/completions', 200, 1.5);
                        INSERT INTO chat_history (request_id, ts, timestamp, key_id, model)
                        VALUES ('r1', 1700000000000, '2023-11-14 22:13:20.000', 1, 'm');
                        """)
                let names = try String.fetchAll(db, sql: indexes)
                #expect(names.contains("usage_log_key_ts") && names.contains("chat_history_request_id"))
            }
        }
        let database = try ProxyDatabase.open(at: path, migrate: true)
        try await database.pool.read { db in
            let names = Set(try String.fetchAll(db, sql: indexes))
            #expect(!names.contains("usage_log_key_ts"))
            #expect(!names.contains("chat_history_request_id"))
            #expect(names.isSuperset(of: ["usage_log_ts", "chat_history_ts", "chat_history_timestamp"]))
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") == 1)
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chat_history") == 1)
        }
        // The request log still stores a request id once: what makes a row sent twice count once.
        try await database.pool.write { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO usage_log (request_id, ts, worker, method, path, status, latency_ms)
                    VALUES ('r1', 1700000000001, 1, 'POST', '/v1/chat/completions', 200, 2)
                    """)
            #expect(db.changesCount == 0)
        }
    }

    @Test("keys are stored sealed and hinted; duplicates are reported, not stored")
    func addKeys() async throws {
        let test = try TestDatabase()
        guard case .added(let key) = try await test.keys.add(name: "one", value: "sk-first-0123456789") else {
            Issue.record("not added")
            return
        }
        #expect(key.id == 1)
        #expect(key.hint == "sk-…6789")
        #expect(try test.box.open(key.sealedValue) == "sk-first-0123456789")
        #expect(try await test.keys.add(name: "again", value: " sk-first-0123456789 ") == .duplicate(existingID: 1))
        let raw = try await test.database.pool.read { db in try String.fetchAll(db, sql: "SELECT key_value FROM keys") }
        #expect(raw.count == 1 && !raw[0].contains("first"))
        await #expect(throws: InputError(field: "name", message: "must not be empty")) {
            try await test.keys.add(name: "  ", value: "sk-second-0123456789")
        }
        await #expect(throws: InputError.self) { try await test.keys.add(name: "x", value: "sk bad key 123") }
        await #expect(throws: InputError.self) { try await test.keys.add(name: "x", value: "short") }
    }

    @Test("import counts added, duplicate and rejected lines")
    func importKeys() async throws {
        let test = try TestDatabase()
        _ = try await test.keys.add(name: "existing", value: "sk-existing-000000001")
        let summary = try await test.keys.importKeys(
            """
            # a comment
            sk-new-00000000000001
            sk-new-00000000000002

            sk-new-00000000000001
            sk-existing-000000001
            not a key
            tiny
            """)
        #expect(summary.added == 2)
        #expect(summary.duplicates == 2)
        #expect(summary.rejected == [7, 8])
        #expect(try await test.keys.list().count == 3)
    }

    @Test("changes to keys and tokens move the generation; usage counters do not")
    func generation() async throws {
        let test = try TestDatabase()
        let start = try await test.generation()
        _ = try await test.keys.add(name: "one", value: "sk-first-0123456789")
        let afterAdd = try await test.generation()
        #expect(afterAdd > start)
        try await test.database.pool.write { db in try db.execute(sql: "UPDATE keys SET usage_count = usage_count + 5")
        }
        #expect(try await test.generation() == afterAdd)
        #expect(try await test.keys.setStatus(id: 1, .disabled))
        let afterDisable = try await test.generation()
        #expect(afterDisable > afterAdd)
        _ = try await test.tokens.create(name: "client")
        #expect(try await test.generation() > afterDisable)
        #expect(try await test.keys.remove(id: 1))
        #expect(try await test.keys.remove(id: 1) == false)
    }

    @Test("a key entering rotation starts level with the least used active key")
    func leastUsedLevelling() async throws {
        let test = try TestDatabase()
        _ = try await test.keys.add(name: "a", value: "sk-aaaaaaaaaaaaaa01")
        try await test.database.pool.write { db in try db.execute(sql: "UPDATE keys SET pick_count = 40") }
        _ = try await test.keys.add(name: "b", value: "sk-bbbbbbbbbbbbbb02", status: .disabled)
        _ = try await test.keys.add(name: "c", value: "sk-cccccccccccccc03")
        _ = try await test.keys.setStatus(id: 2, .active)
        let counts = try await test.database.pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT pick_count FROM keys ORDER BY id")
        }
        #expect(counts == [40, 40, 40])
    }

    @Test("client tokens are stored hashed and revoked once")
    func tokens() async throws {
        let test = try TestDatabase()
        let (token, value) = try await test.tokens.create(name: "ci")
        #expect(value.hasPrefix("sk-proxy-"))
        #expect(token.tokenHash == SecretDigest.sha256Hex(value))
        let stored = try await test.database.pool.read { db in
            try String.fetchAll(db, sql: "SELECT token_hash FROM client_tokens")
        }
        #expect(stored == [SecretDigest.sha256Hex(value)])
        #expect(try await test.tokens.revoke(id: token.id!) == .revoked)
        #expect(try await test.tokens.revoke(id: token.id!) == .alreadyRevoked)
        #expect(try await test.tokens.revoke(id: 99) == .notFound)
    }
}
