import Foundation
import Testing

@testable import Shared

/// `SecretCheck` over `SecretCheckStoring` on every engine: a start with another secret is refused, nothing
/// stored changes, and the first start stores the check once.
@Suite("Secret check")
struct SecretCheckTests {
    private static let other = SecretBox(secret: "another-secret-0123456789")

    private static func verify(_ box: SecretBox, _ stores: EngineStores) async throws {
        try await SecretCheck.verify(box, store: stores.secretCheck, source: "SECRET_KEY", now: 1)
    }

    @Test(
        "an empty installation stores the check at its first start; another secret is refused later",
        arguments: StoreEngine.tested)
    func firstStart(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            #expect(try await stores.secretCheck.storedCheck() == nil)
            try await Self.verify(stores.box, stores)
            let stored = try #require(try await stores.secretCheck.storedCheck())
            #expect(try stores.box.open(stored) == SecretCheck.plaintext)
            try await Self.verify(stores.box, stores)
            #expect(try await stores.secretCheck.storedCheck() == stored)
            let failure = await #expect(throws: SecretCheck.Failure.self) { try await Self.verify(Self.other, stores) }
            #expect(failure?.description.hasPrefix("SECRET_KEY is not this installation's secret") == true)
            #expect(try await stores.secretCheck.storedCheck() == stored)
        }
    }

    @Test(
        "an installation from before the check is adopted only by the secret that opens its keys",
        arguments: StoreEngine.tested)
    func adoption(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            _ = try await stores.keys.add(name: "a", value: "sk-first-0123456789abcdefghij", status: .active)
            _ = try await stores.keys.add(name: "b", value: "sk-second-0123456789abcdefghi", status: .active)
            let failure = await #expect(throws: SecretCheck.Failure.self) { try await Self.verify(Self.other, stores) }
            #expect(failure?.description.contains("does not open 2 of the 2 stored upstream key(s)") == true)
            #expect(try await stores.secretCheck.storedCheck() == nil)
            try await Self.verify(stores.box, stores)
            #expect(try await stores.secretCheck.storedCheck() != nil)
        }
    }

    @Test("a box that also holds the previous secret passes while a rotation runs", arguments: StoreEngine.tested)
    func previousSecret(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await Self.verify(stores.box, stores)
            let rotating = SecretBox(secrets: ["the-next-secret-0123456789", "test-secret-0123456789"])
            try await Self.verify(rotating, stores)
        }
    }

    @Test("the first check stored wins; a later store returns it", arguments: StoreEngine.tested)
    func firstWins(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let first = stores.box.seal(SecretCheck.plaintext)
            let stored = try await stores.secretCheck.storeCheckIfAbsent(first, now: 1)
            #expect(stored == first)
            let second = Self.other.seal(SecretCheck.plaintext)
            let kept = try await stores.secretCheck.storeCheckIfAbsent(second, now: 2)
            #expect(kept == first)
            await #expect(throws: SecretCheck.Failure.self) { try await Self.verify(Self.other, stores) }
        }
    }

    @Test(
        "rotate-secret's pass seals every key and the check under the newest secret; one under no secret changes nothing",
        arguments: StoreEngine.tested)
    func reseal(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await Self.verify(stores.box, stores)
            let values = ["sk-reseal-a-0123456789abcdefgh", "sk-reseal-b-0123456789abcdefgh"]
            for (index, value) in values.enumerated() {
                _ = try await stores.keys.add(name: "k\(index)", value: value, status: .active)
            }
            let newest = SecretBox(secret: "the-next-secret-0123456789")
            let rotating = SecretBox(secrets: ["the-next-secret-0123456789", "test-secret-0123456789"])
            #expect(try await stores.secretCheck.reseal(under: rotating) == .init(resealed: 2, keys: 2))
            #expect(try await stores.secretCheck.sealedKeyValues().map { try newest.open($0) } == values)
            // The check moved with the keys: the new secret alone starts, the old one is refused.
            try await Self.verify(newest, stores)
            await #expect(throws: SecretCheck.Failure.self) { try await Self.verify(stores.box, stores) }
            // A second pass finds nothing left to move.
            #expect(try await stores.secretCheck.reseal(under: rotating) == .init(resealed: 0, keys: 2))

            // A value sealed under a secret the box does not hold stops the pass before anything changes.
            let foreign = Self.other.seal("sk-foreign-0123456789abcdefg")
            try await stores.execute("UPDATE keys SET key_value = '\(foreign)' WHERE name = 'k1'")
            let before = try await stores.secretCheck.sealedKeyValues()
            let check = try await stores.secretCheck.storedCheck()
            let back = SecretBox(secrets: ["test-secret-0123456789", "the-next-secret-0123456789"])
            let failure = await #expect(throws: SecretRotation.Failure.self) {
                try await stores.secretCheck.reseal(under: back)
            }
            #expect(failure?.description.hasPrefix("key ") == true)
            #expect(try await stores.secretCheck.sealedKeyValues() == before)
            #expect(try await stores.secretCheck.storedCheck() == check)
        }
    }
}
