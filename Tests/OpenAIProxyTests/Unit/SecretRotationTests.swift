import Foundation
import GRDB
import Glibc
import Testing

@testable import Shared

@Suite("Secret rotation")
struct SecretRotationTests {
    /// A data directory with a migrated database, `secret.key`, and a configuration pointing at it.
    private struct DataDirectory {
        let directory = TemporaryDirectory()
        var configuration: ProxyConfiguration
        let database: ProxyDatabase

        init(secretKey: String? = nil, previous: String? = nil) throws {
            var configuration = ProxyConfiguration.defaults(cores: 1)
            configuration.dataDirectory = directory.path
            configuration.secretKey = secretKey
            configuration.secretKeyPrevious = previous
            self.configuration = configuration
            database = try ProxyDatabase.open(at: configuration.paths.database, migrate: true)
        }

        func file(_ path: String) -> String? { (try? SecretFile.read(path)) ?? nil }

        /// The secret check's store, which `rotate-secret` seals again through.
        var checks: SecretCheckStore { SecretCheckStore(database: database) }

        func sealedValues() throws -> [String] {
            try database.pool.read { db in try String.fetchAll(db, sql: "SELECT key_value FROM keys ORDER BY id") }
        }
    }

    @Test("a box on the data directory seals under secret.key.next once it appears and follows the rename")
    func boxFollowsFiles() throws {
        let data = try DataDirectory()
        let box = try SecretMaterial.box(for: data.configuration, create: true)
        let old = try #require(data.file(data.configuration.paths.secretKey))
        let before = box.seal("sk-before-0123456789")
        #expect(try SecretBox(secret: old).open(before) == "sk-before-0123456789")

        // A rotation begins: the next secret is written; this long-lived box seals under it at once.
        let next = "next-secret-0123456789abcdef"
        _ = try SecretFile.loadOrCreate(at: data.configuration.paths.secretKeyNext) { next }
        let during = box.seal("sk-during-0123456789")
        #expect(try SecretBox(secret: next).open(during) == "sk-during-0123456789")
        #expect(try box.open(before) == "sk-before-0123456789")

        // A value another process sealed under the next secret opens too, after the rename as well.
        let elsewhere = SecretBox(secret: next).seal("sk-elsewhere-0123456789")
        #expect(rename(data.configuration.paths.secretKeyNext, data.configuration.paths.secretKey) == 0)
        #expect(try box.open(elsewhere) == "sk-elsewhere-0123456789")
        #expect(try box.openReporting(during).sealedUnderNewest)
        // The old secret is gone from the files: once the box reloads (it does before every seal), values only
        // it opens no longer open.
        _ = box.seal("sk-after-0123456789")
        #expect(throws: SecretBox.OpenError.wrongSecret) { try box.open(before) }
    }

    @Test("rotate-secret re-seals every key under a new secret.key and leaves no old secret behind")
    func rotateFiles() async throws {
        let data = try DataDirectory()
        let store = KeyStore(
            database: data.database, box: try SecretMaterial.box(for: data.configuration, create: true))
        let values = ["sk-rotate-one-0123456789", "sk-rotate-two-0123456789", "sk-rotate-three-012345678"]
        for (index, value) in values.enumerated() { _ = try await store.add(name: "k\(index)", value: value) }
        let old = try #require(data.file(data.configuration.paths.secretKey))
        let sealedBefore = try data.sealedValues()
        let checks = SecretCheckStore(database: data.database)
        try await SecretCheck.verify(store.box, store: checks, source: "test", now: 1)

        let outcome = try await SecretRotation.rotate(configuration: data.configuration, store: data.checks)
        #expect(outcome == .init(resealed: 3, keys: 3, wroteSecretFile: true))
        let new = try #require(data.file(data.configuration.paths.secretKey))
        #expect(new != old)
        #expect(!FileManager.default.fileExists(atPath: data.configuration.paths.secretKeyNext))
        let sealedAfter = try data.sealedValues()
        #expect(Set(sealedAfter).isDisjoint(with: sealedBefore))
        #expect(try sealedAfter.map { try SecretBox(secret: new).open($0) } == values)
        for sealed in sealedAfter {
            #expect(throws: SecretBox.OpenError.wrongSecret) { try SecretBox(secret: old).open(sealed) }
        }
        // The secret check moved with the keys: a start with the new secret alone passes, the old one is refused.
        try await SecretCheck.verify(SecretBox(secret: new), store: checks, source: "test", now: 2)
        await #expect(throws: SecretCheck.Failure.self) {
            try await SecretCheck.verify(SecretBox(secret: old), store: checks, source: "test", now: 3)
        }
        // The store made before the rotation still works: it opens and seals under the new secret.
        guard case .added = try await store.add(name: "k3", value: "sk-rotate-four-012345678") else {
            Issue.record("the fourth key was not added")
            return
        }
        #expect(try SecretBox(secret: new).open(try data.sealedValues()[3]) == "sk-rotate-four-012345678")

        // A second rotation has nothing old to find but still moves every key to yet another secret.
        let again = try await SecretRotation.rotate(configuration: data.configuration, store: data.checks)
        #expect(again.resealed == 4 && again.keys == 4)
        #expect(data.file(data.configuration.paths.secretKey) != new)
    }

    @Test("a key that opens under no secret stops the rotation with nothing changed")
    func foreignValue() async throws {
        let data = try DataDirectory()
        let store = KeyStore(
            database: data.database, box: try SecretMaterial.box(for: data.configuration, create: true))
        _ = try await store.add(name: "good", value: "sk-good-0123456789abcd")
        _ = try await store.add(name: "foreign", value: "sk-foreign-0123456789ab")
        let foreign = SecretBox(secret: "someone-else-0123456789").seal("sk-foreign-0123456789ab")
        try await data.database.pool.write { db in
            try db.execute(sql: "UPDATE keys SET key_value = ? WHERE name = 'foreign'", arguments: [foreign])
        }
        let old = data.file(data.configuration.paths.secretKey)
        let before = try data.sealedValues()
        let failure = await #expect(throws: SecretRotation.Failure.self) {
            try await SecretRotation.rotate(configuration: data.configuration, store: data.checks)
        }
        #expect(failure?.description.contains("key 2 does not open") == true)
        #expect(try data.sealedValues() == before)
        #expect(data.file(data.configuration.paths.secretKey) == old)
    }

    @Test("only one rotation at a time")
    func oneAtATime() async throws {
        let data = try DataDirectory()
        _ = try SecretMaterial.box(for: data.configuration, create: true)
        let descriptor = open(data.configuration.paths.secretKeyLock, O_RDWR | O_CREAT, 0o600)
        defer { close(descriptor) }
        #expect(flock(descriptor, LOCK_EX | LOCK_NB) == 0)
        let failure = await #expect(throws: SecretRotation.Failure.self) {
            try await SecretRotation.rotate(configuration: data.configuration, store: data.checks)
        }
        #expect(failure?.description.contains("another rotate-secret is running") == true)
    }

    @Test("with SECRET_KEY: refused without SECRET_KEY_PREVIOUS; with it, keys move from the previous secret")
    func configuredSecret() async throws {
        let previous = "previous-secret-0123456789"
        let current = "current-secret-0123456789"
        let refused = try DataDirectory(secretKey: previous)
        let failure = await #expect(throws: SecretRotation.Failure.self) {
            try await SecretRotation.rotate(configuration: refused.configuration, store: refused.checks)
        }
        #expect(failure?.description.contains("SECRET_KEY_PREVIOUS") == true)

        let data = try DataDirectory(secretKey: current, previous: previous)
        let oldStore = KeyStore(database: data.database, box: SecretBox(secret: previous))
        _ = try await oldStore.add(name: "a", value: "sk-configured-a-0123456789")
        let box = try SecretMaterial.box(for: data.configuration, create: false)
        // Sealed under the previous secret, it opens while both are configured; new keys seal under SECRET_KEY.
        #expect(try box.open(try data.sealedValues()[0]) == "sk-configured-a-0123456789")
        _ = try await KeyStore(database: data.database, box: box).add(name: "b", value: "sk-configured-b-0123456789")
        let outcome = try await SecretRotation.rotate(configuration: data.configuration, store: data.checks)
        #expect(outcome == .init(resealed: 1, keys: 2, wroteSecretFile: false))
        #expect(
            try data.sealedValues().map { try SecretBox(secret: current).open($0) } == [
                "sk-configured-a-0123456789", "sk-configured-b-0123456789",
            ])
        #expect(!FileManager.default.fileExists(atPath: data.configuration.paths.secretKey))
    }

    @Test(
        "on PostgreSQL, a rotation that would write a secret.key on one host only is refused, with the way that works")
    func postgresNeedsConfiguredSecret() async throws {
        var data = try DataDirectory()
        data.configuration.database = .postgresql(
            try PostgresLocation(parsing: "postgresql://proxy@db.example/proxy", password: nil))
        let failure = await #expect(throws: SecretRotation.Failure.self) {
            try await SecretRotation.rotate(configuration: data.configuration, store: data.checks)
        }
        #expect(failure?.description.contains("SECRET_KEY_PREVIOUS on every host") == true)
        #expect(data.file(data.configuration.paths.secretKey) == nil)
        #expect(!FileManager.default.fileExists(atPath: data.configuration.paths.secretKeyNext))
    }

    @Test("SECRET_KEY_PREVIOUS without SECRET_KEY is a configuration error that shows no secret")
    func previousAlone() throws {
        #expect(throws: ConfigurationError.missingCompanion(setting: "SECRET_KEY_PREVIOUS", needs: "SECRET_KEY")) {
            try ConfigurationLoader(environment: ["SECRET_KEY_PREVIOUS": "previous-secret-0123456789"], cores: 1).load()
        }
        let short = ConfigurationError.invalidValue(
            setting: "SECRET_KEY", value: "short-secret", source: "environment", accepts: "at least 16 characters")
        #expect(!short.description.contains("short-secret"))
    }
}
