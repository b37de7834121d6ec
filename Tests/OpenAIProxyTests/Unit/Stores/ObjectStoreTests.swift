import Foundation
import Testing

@testable import Shared

/// `ObjectStoring` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Object store")
struct ObjectStoreTests {
    private static func object(_ id: String, key: Int64 = 1, token: Int64 = 1, at: Int64 = 1000) -> StoredObject {
        StoredObject(id: id, kind: "file", keyID: key, tokenID: token, createdAt: at, expiresAt: at + 10_000)
    }

    @Test("records are stored once, read back, and deleted by a DELETE's change", arguments: StoreEngine.tested)
    func applyAndRead(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let file = Self.object("file-a", key: 2, token: 7)
            try await stores.objects.apply([.created(file), .created(Self.object("batch_b"))])
            // The same row again (a replayed usage line) changes nothing, even with other values.
            try await stores.objects.apply([.created(Self.object("file-a", key: 3, token: 8))])
            #expect(try await stores.objects.object(id: "file-a") == file)
            #expect(try await stores.objects.object(id: "file-missing") == nil)
            try await stores.objects.apply([.deleted(id: "file-a"), .deleted(id: "never-seen")])
            #expect(try await stores.objects.object(id: "file-a") == nil)
            #expect(try await stores.objects.object(id: "batch_b") != nil)
        }
    }

    @Test("workers read new records past the last position they saw, in order", arguments: StoreEngine.tested)
    func poll(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.objects.apply([.created(Self.object("o1")), .created(Self.object("o2"))])
            let first = try await stores.objects.objects(after: 0, now: 0, limit: 100)
            #expect(first.objects.map(\.id) == ["o1", "o2"])
            let none = try await stores.objects.objects(after: first.last, now: 0, limit: 100)
            #expect(none.objects.isEmpty && none.last == first.last)
            try await stores.objects.apply([.created(Self.object("o3")), .created(Self.object("o4"))])
            let page = try await stores.objects.objects(after: first.last, now: 0, limit: 1)
            #expect(page.objects.map(\.id) == ["o3"])
            let rest = try await stores.objects.objects(after: page.last, now: 0, limit: 100)
            #expect(rest.objects.map(\.id) == ["o4"])
            // Expired records are passed over, but the position moves past them.
            let late = try await stores.objects.objects(after: 0, now: 1000 + 10_000, limit: 100)
            #expect(late.objects.isEmpty && late.last == rest.last)
        }
    }

    @Test("expired records are deleted, the others stay", arguments: StoreEngine.tested)
    func expiry(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.objects.apply([
                .created(Self.object("old", at: 0)), .created(Self.object("new", at: 50_000)),
            ])
            #expect(try await stores.objects.deleteExpired(now: 10_000) == 1)
            #expect(try await stores.objects.object(id: "old") == nil)
            #expect(try await stores.objects.object(id: "new") != nil)
            #expect(try await stores.objects.deleteExpired(now: 10_000) == 0)
        }
    }

    @Test(
        "removing a key keeps its objects' records (their requests get a 409, not another key)",
        arguments: StoreEngine.tested)
    func keyRemoval(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let added = try await stores.keys.add(name: "k", value: "sk-obj-0000000001", status: .active)
            guard case .added(let key) = added, let id = key.id
            else {
                Issue.record("not added")
                return
            }
            try await stores.objects.apply([.created(Self.object("file-kept", key: id))])
            #expect(try await stores.keys.remove(id: id, audit: nil))
            #expect(try await stores.keys.key(id: id) == nil)
            #expect(try await stores.objects.object(id: "file-kept")?.keyID == id)
        }
    }
}
