import Foundation
import Testing

@testable import ProxyWorker
@testable import Shared

/// Operator changes reach a worker's records: a revoked record is forgotten, a reassigned one names its new key,
/// and what the worker learned itself after the change survives the reload.
@Suite("Object directory: operator changes")
struct ObjectDirectoryReloadTests {
    private static func object(_ id: String, key: Int64 = 2, at createdAt: Int64 = 1) -> StoredObject {
        StoredObject(id: id, kind: "file", keyID: key, tokenID: 9, createdAt: createdAt, expiresAt: .max)
    }

    @Test("a revoke or reassign in the database reaches the worker on its next look")
    func refresherReloads() async throws {
        let test = try TestDatabase()
        let directory = ObjectDirectory()
        let refresher = test.objectRefresher(directory)
        let store = ObjectStore(database: test.database)
        try await store.apply([.created(Self.object("file-a")), .created(Self.object("file-b"))])
        await refresher.refreshObjects()
        #expect(directory.object("file-a")?.keyID == 2 && directory.generation == 0)

        #expect(try await store.revoke(id: "file-a", now: 50) != nil)
        #expect(try await store.reassign(from: 2, to: 5, now: 60) == 1)
        // Learned by this worker after the changes, not in the table yet: it stays through the reload.
        #expect(directory.learn(Self.object("file-own", at: 70)))
        await refresher.refreshObjects()
        #expect(directory.object("file-a") == nil)
        #expect(directory.object("file-b")?.keyID == 5)
        #expect(directory.object("file-own") != nil)
        #expect(directory.generation == 2 && directory.count == 2)

        // Rows written after the reload are still read past the position it reached.
        try await store.apply([.created(Self.object("file-c"))])
        await refresher.refreshObjects()
        #expect(directory.object("file-c") != nil && directory.count == 3)
    }

    @Test("a reload keeps only what the worker learned after the change; the table is the truth for the rest")
    func reloadMerge() {
        let directory = ObjectDirectory()
        #expect(directory.learn(Self.object("before", at: 10)))
        #expect(directory.learn(Self.object("after", at: 30)))
        #expect(directory.learn(Self.object("moved", key: 2, at: 40)))
        directory.reload(
            [Self.object("moved", key: 7, at: 40), Self.object("other", at: 5)], upTo: 12,
            generation: ObjectGeneration(generation: 3, changedAt: 20))
        #expect(directory.object("before") == nil, "learned before the change and not in the table: revoked")
        #expect(directory.object("after") != nil)
        #expect(directory.object("moved")?.keyID == 7)
        #expect(directory.object("other") != nil)
        #expect(directory.seenUpTo == 12 && directory.generation == 3 && directory.count == 3)
    }
}
