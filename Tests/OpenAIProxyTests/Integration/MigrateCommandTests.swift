import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing

@testable import Shared

extension RealService {
    /// `openai-proxy migrate --to`: a real installation, used through the real service, copied into a fresh
    /// PostgreSQL database of the test cluster.
    @Suite("migrate --to PostgreSQL", .serialized, .enabled(if: PostgresTestCluster.skipReason == nil))
    struct MigrateCommandTests {
        private static let keys = ["sk-migrate-alpha-0123456789", "sk-migrate-bravo-0123456789"]

        private static func url(_ location: PostgresLocation) -> String {
            "postgresql://\(location.user):\(location.password ?? "")@\(location.host):\(location.port)/"
                + "\(location.database)?sslmode=disable"
        }

        private static func integers(_ sql: String, _ database: PostgresProxyDatabase) async throws -> [Int64] {
            try await database.connection { connection in
                let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: database.logger)
                var values: [Int64] = []
                for try await value in rows.decode(Int64.self) { values.append(value) }
                return values
            }
        }

        @Test("keys stay sealed, tokens hashed, counters kept; a second copy is refused; rotate-secret re-seals there")
        func copyAndVerify() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try service.addKeys(Self.keys)
            let token = try service.createToken(name: "migrated")
            try await service.start()
            for _ in 0..<5 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            let source = try service.writableDatabase()
            #expect(
                await eventually {
                    (try? await source.read { db in try Int64.fetchOne(db, sql: "SELECT count(*) FROM usage_log") })
                        == 5
                })
            #expect(await service.stop() == 0)
            let secret = try #require(try SecretFile.read(service.directory.file("data") + "/secret.key"))
            let sourcePicks = try await source.read { db in
                try Int64.fetchAll(db, sql: "SELECT pick_count FROM keys ORDER BY id")
            }

            try await PostgresTestCluster.withFreshDatabase { location in
                let copied = try service.cli(["migrate", "--to", Self.url(location)])
                #expect(copied.status == 0, "\(copied.stderr)")
                #expect(copied.stdout.contains("keys: 2 row(s)"), "\(copied.stdout)")
                #expect(copied.stdout.contains("usage_log: 5 row(s)"), "\(copied.stdout)")
                #expect(copied.stdout.contains("copied and verified"), "\(copied.stdout)")
                #expect(!copied.stdout.contains(location.password ?? "-no-password-"))

                try await PostgresProxyDatabase.withRunning(location, logger: Logger(label: "test.migrate")) {
                    database in
                    try await PostgresSchema.check(database)
                    // Keys open with the installation's secret; counters arrive as stored (no trigger levelled them).
                    let keys = try await PostgresKeyStore(database: database, box: SecretBox(secret: secret)).list()
                    #expect(keys.map(\.name) == ["key0", "key1"])
                    #expect(try keys.map { try SecretBox(secret: secret).open($0.sealedValue) } == Self.keys)
                    #expect(try await Self.integers("SELECT pick_count FROM keys ORDER BY id", database) == sourcePicks)
                    let hash = SecretDigest.sha256Hex(token)
                    #expect(
                        try await Self.integers(
                            "SELECT count(*) FROM client_tokens WHERE token_hash = '\(hash)' AND name = 'migrated'",
                            database) == [1])
                    #expect(
                        try await Self.integers("SELECT count(*) FROM usage_log WHERE status = 200", database) == [5])
                    // A key added on PostgreSQL gets the next id, not one the copy already used.
                    _ = try await PostgresKeyStore(database: database, box: SecretBox(secret: secret)).add(
                        name: "after", value: "sk-migrate-charlie-012345678", status: .active)
                    #expect(try await Self.integers("SELECT id FROM keys ORDER BY id", database) == [1, 2, 3])
                    // The secret check came along: the installation's secret passes, another is refused.
                    let checks = PostgresSecretCheckStore(database: database)
                    try await SecretCheck.verify(SecretBox(secret: secret), store: checks, source: "test", now: 1)
                    await #expect(throws: SecretCheck.Failure.self) {
                        try await SecretCheck.verify(
                            SecretBox(secret: "another-secret-0123456789"), store: checks, source: "test", now: 1)
                    }
                }

                let again = try service.cli(["migrate", "--to", Self.url(location)])
                #expect(again.status == 1)
                #expect(again.stderr.split(separator: "\n").count == 1, "\(again.stderr)")
                #expect(again.stderr.contains("already holds data (3 keys, 2 client_tokens"), "\(again.stderr)")
                #expect(!again.stderr.contains(location.password ?? "-no-password-"))

                // rotate-secret on PostgreSQL: refused without SECRET_KEY (a secret.key is one host's), and with
                // SECRET_KEY and SECRET_KEY_PREVIOUS it seals every key of the cluster under the new secret.
                let onPostgres = ["OPENAI_PROXY_DATABASE_URL": Self.url(location)]
                let refused = try service.cli(["rotate-secret"], environment: onPostgres)
                #expect(refused.status == 1)
                #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
                #expect(refused.stderr.contains("on PostgreSQL every host"), "\(refused.stderr)")
                let next = "the-cluster-secret-0123456789"
                let rotated = try service.cli(
                    ["rotate-secret"],
                    environment: onPostgres.merging(["SECRET_KEY": next, "SECRET_KEY_PREVIOUS": secret]) { $1 })
                #expect(rotated.status == 0, "\(rotated.stderr)")
                #expect(rotated.stdout.contains("re-encrypted 3 of 3 key(s) under SECRET_KEY"), "\(rotated.stdout)")
                try await PostgresProxyDatabase.withRunning(location, logger: Logger(label: "test.rotate")) {
                    database in
                    let keys = try await PostgresKeyStore(database: database, box: SecretBox(secret: next)).list()
                    #expect(
                        try keys.map { try SecretBox(secret: next).open($0.sealedValue) }
                            == Self.keys + ["sk-migrate-charlie-012345678"])
                    let checks = PostgresSecretCheckStore(database: database)
                    try await SecretCheck.verify(SecretBox(secret: next), store: checks, source: "test", now: 2)
                }
            }
        }

        @Test("a bad target is one line: not a PostgreSQL URL, unreachable, no installation")
        func badTargets() throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9/v1")
            let missing = try service.cli(["migrate", "--to", "postgresql://u:secret-word@127.0.0.1:9/db"])
            #expect(missing.status == 1)
            #expect(missing.stderr.hasPrefix("openai-proxy: no installation to copy"), "\(missing.stderr)")
            try service.addKeys(["sk-migrate-delta-0123456789"])
            let sqlite = try service.cli(["migrate", "--to", "sqlite:"])
            #expect(sqlite.status == 2)
            #expect(sqlite.stderr == "openai-proxy: invalid --to: --to must be a postgresql:// or postgres:// URL\n")
            let unreachable = try service.cli(["migrate", "--to", "postgresql://u:secret-word@127.0.0.1:9/db"])
            #expect(unreachable.status == 1)
            #expect(
                unreachable.stderr.hasPrefix(
                    "openai-proxy: cannot connect to PostgreSQL at postgresql://u@127.0.0.1:9/db"))
            #expect(unreachable.stderr.split(separator: "\n").count == 1, "\(unreachable.stderr)")
            #expect(!unreachable.stderr.contains("secret-word"))
        }

        @Test("a server's refusal is its own message in one line, not postgres-nio's generic description")
        func serverRefusal() async throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9/v1")
            try service.addKeys(["sk-migrate-echo-0123456789a"])
            try await PostgresTestCluster.withFreshDatabase { location in
                // The cluster's own `postgres` database: since PostgreSQL 15 only its owner creates tables there.
                var shared = location
                shared.database = "postgres"
                let refused = try service.cli(["migrate", "--to", Self.url(shared)])
                #expect(refused.status == 1)
                #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
                #expect(
                    refused.stderr.hasPrefix("openai-proxy: PostgreSQL: permission denied for schema public"),
                    "\(refused.stderr)")
                #expect(refused.stderr.contains("(SQLSTATE 42501)"), "\(refused.stderr)")
            }
        }
    }
}
