import Foundation
import Testing

@testable import Shared

/// `ObjectStoring`'s operator side on every engine: list, count, revoke, reassign, and the generation workers
/// reload on.
@Suite("Object store: operators")
struct ObjectStoreAdminTests {
    private static func object(
        _ id: String, key: Int64, token: Int64, kind: String = "file", at: Int64
    )
        -> StoredObject
    {
        StoredObject(id: id, kind: kind, keyID: key, tokenID: token, createdAt: at, expiresAt: at + 10_000)
    }

    private static let seeded: [StoredObject] = [
        object("file-1", key: 1, token: 7, at: 100), object("batch_2", key: 1, token: 8, kind: "batch", at: 200),
        object("file-3", key: 2, token: 7, at: 300), object("resp_4", key: 2, token: 7, kind: "response", at: 400),
    ]

    @Test(
        "pages are newest first, filtered by token, key and kind, with the total that matches",
        arguments: StoreEngine.tested)
    func page(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.objects.apply(Self.seeded.map(ObjectChange.created))
            let all = try await stores.objects.page(ObjectFilter(), limit: 10, offset: 0)
            #expect(all.objects.map(\.id) == ["resp_4", "file-3", "batch_2", "file-1"] && all.total == 4)
            let second = try await stores.objects.page(ObjectFilter(), limit: 2, offset: 2)
            #expect(second.objects.map(\.id) == ["batch_2", "file-1"] && second.total == 4)
            let token = try await stores.objects.page(ObjectFilter(tokenID: 7), limit: 10, offset: 0)
            #expect(token.objects.map(\.id) == ["resp_4", "file-3", "file-1"] && token.total == 3)
            let keyAndKind = try await stores.objects.page(ObjectFilter(keyID: 2, kind: "file"), limit: 10, offset: 0)
            #expect(keyAndKind.objects == [Self.seeded[2]] && keyAndKind.total == 1)
            let none = try await stores.objects.page(ObjectFilter(tokenID: 8, keyID: 2), limit: 10, offset: 0)
            #expect(none.objects.isEmpty && none.total == 0)
            let counts = try await stores.objects.counts()
            #expect(counts == ObjectCounts(byKey: [1: 2, 2: 2], byToken: [7: 3, 8: 1]))
        }
    }

    @Test(
        "revoking one record drops it and moves the generation; an unknown id changes nothing",
        arguments: StoreEngine.tested)
    func revokeOne(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.objects.apply(Self.seeded.map(ObjectChange.created))
            #expect(try await stores.objects.generation() == ObjectGeneration(generation: 0, changedAt: 0))
            #expect(try await stores.objects.revoke(id: "file-3", now: 5_000) == Self.seeded[2])
            #expect(try await stores.objects.object(id: "file-3") == nil)
            #expect(try await stores.objects.generation() == ObjectGeneration(generation: 1, changedAt: 5_000))
            #expect(try await stores.objects.revoke(id: "file-3", now: 6_000) == nil)
            #expect(try await stores.objects.generation().generation == 1)
            #expect(try await stores.objects.counts().byKey == [1: 2, 2: 1])
        }
    }

    @Test("a key's records are reassigned to another key, or revoked, all at once", arguments: StoreEngine.tested)
    func byKey(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.objects.apply(Self.seeded.map(ObjectChange.created))
            #expect(try await stores.objects.reassign(from: 1, to: 3, now: 7_000) == 2)
            #expect(try await stores.objects.object(id: "file-1")?.keyID == 3)
            #expect(try await stores.objects.object(id: "batch_2")?.keyID == 3)
            #expect(try await stores.objects.object(id: "file-3")?.keyID == 2)
            #expect(try await stores.objects.generation() == ObjectGeneration(generation: 1, changedAt: 7_000))
            // Nothing to move or drop: the generation stays, so workers do not reload for nothing.
            #expect(try await stores.objects.reassign(from: 1, to: 3, now: 8_000) == 0)
            #expect(try await stores.objects.revoke(keyID: 1, now: 8_000) == 0)
            #expect(try await stores.objects.generation().generation == 1)
            #expect(try await stores.objects.revoke(keyID: 2, now: 9_000) == 2)
            #expect(
                try await stores.objects.page(ObjectFilter(), limit: 10, offset: 0).objects.map(\.id) == [
                    "batch_2", "file-1",
                ])
            #expect(try await stores.objects.generation() == ObjectGeneration(generation: 2, changedAt: 9_000))
            // The changed rows keep their positions: workers learn of the change from the generation alone.
            let polled = try await stores.objects.objects(after: 0, now: 0, limit: 10)
            #expect(polled.objects.map(\.id) == ["file-1", "batch_2"])
        }
    }
}
