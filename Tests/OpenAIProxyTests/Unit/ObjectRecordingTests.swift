import Foundation
import GRDB
import Logging
import Testing

@testable import ProxyWorker
@testable import Shared
@testable import StatsCollector

/// An object's record on its way: the collector stores it with the batch it came in, another worker reads it
/// from the database, expired records go.
@Suite("Object recording")
struct ObjectRecordingTests {
    private static func object(_ id: String, key: Int64 = 2, expires: Int64 = .max) -> StoredObject {
        StoredObject(id: id, kind: "file", keyID: key, tokenID: 9, createdAt: 1, expiresAt: expires)
    }

    @Test("the collector stores object lines in the batch's transaction, in order; a replayed line counts once")
    func collector() async throws {
        let test = try TestDatabase()
        let writer = UsageBatchWriter(database: test.database, logger: Logger(label: "test"))
        for change in [
            ObjectChange.created(Self.object("file-1")), .created(Self.object("file-2")), .deleted(id: "file-1"),
            .created(Self.object("file-2", key: 3)),
        ] {
            let line = try #require(UsageWire.encode(change))
            writer.enqueue(UsageWire.decodeRecord(Array(line.dropLast())))
        }
        await writer.flush()
        #expect(writer.pending == 0)
        let store = ObjectStore(database: test.database)
        #expect(try await store.object(id: "file-1") == nil)
        #expect(try await store.object(id: "file-2") == Self.object("file-2"))
    }

    @Test("a worker's refresher takes in the records other workers' requests made, and drops expired ones")
    func refresher() async throws {
        let test = try TestDatabase()
        let directory = ObjectDirectory()
        let refresher = test.objectRefresher(directory)
        let store = ObjectStore(database: test.database)
        try await store.apply([.created(Self.object("file-a")), .created(Self.object("file-old", expires: 10))])
        await refresher.refreshObjects()
        #expect(directory.object("file-a") == Self.object("file-a"))
        #expect(directory.object("file-old") == nil)
        // What this worker learned itself stands; new rows are read past the last position.
        #expect(directory.learn(Self.object("file-own", key: 1)))
        #expect(!directory.learn(Self.object("file-own", key: 3)))
        try await store.apply([.created(Self.object("file-b"))])
        await refresher.refreshObjects()
        #expect(directory.object("file-b") != nil)
        #expect(directory.object("file-own")?.keyID == 1)
        #expect(directory.count == 3)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(try await store.deleteExpired(now: now) == 1)
    }
}

/// Key health for a request bound to its objects' key: that key's state alone decides.
@Suite("Pinned key route")
struct PinnedKeyRouteTests {
    @Test("active, cooling, out of quota, invalid, disabled and removed keys are told apart from the snapshot")
    func states() async throws {
        let test = try TestDatabase()
        let board = KeyHealthBoard(
            store: KeyHealthStore(database: test.database, policy: KeyHealthPolicy(), logger: Logger(label: "t")),
            logger: Logger(label: "t"))
        var ids: [Int64] = []
        for name in ["active", "cooling", "spent", "invalid", "disabled"] {
            guard case .added(let key) = try await test.keys.add(name: name, value: "sk-pinned-\(name)-000001"),
                let id = key.id
            else {
                Issue.record("not added")
                return
            }
            ids.append(id)
        }
        let now = WallClock.nowMs()
        try await test.database.pool.write { [ids] db in
            try db.execute(
                sql: "UPDATE keys SET status = 'cooling', next_probe_at = ? WHERE id = ?",
                arguments: [now + 30_000, ids[1]])
            try db.execute(
                sql: "UPDATE keys SET status = 'quota_exhausted', next_probe_at = ? WHERE id = ?",
                arguments: [now + 3_600_000, ids[2]])
            try db.execute(sql: "UPDATE keys SET status = 'invalid' WHERE id = ?", arguments: [ids[3]])
            try db.execute(sql: "UPDATE keys SET status = 'disabled' WHERE id = ?", arguments: [ids[4]])
        }
        let snapshot = try await RoutingSnapshot.load(from: test.database, box: test.box, logger: Logger(label: "t"))
        guard case .key(let key) = board.pinnedRoute(snapshot, keyID: ids[0], now: now) else {
            Issue.record("the active key was not routed to")
            return
        }
        #expect(key.id == ids[0])
        #expect(board.pinnedRoute(snapshot, keyID: ids[1], now: now) == .waiting(.cooling, retryAfterSeconds: 30))
        #expect(
            board.pinnedRoute(snapshot, keyID: ids[2], now: now) == .waiting(.quotaExhausted, retryAfterSeconds: 3600))
        #expect(board.pinnedRoute(snapshot, keyID: ids[3], now: now) == .invalid)
        #expect(board.pinnedRoute(snapshot, keyID: ids[4], now: now) == .disabled)
        #expect(board.pinnedRoute(snapshot, keyID: 9999, now: now) == .removed)
        // A cooling key whose time is up may serve again.
        guard case .key = board.pinnedRoute(snapshot, keyID: ids[1], now: now + 30_000) else {
            Issue.record("a cooled key was not routed to")
            return
        }
    }
}

extension TestDatabase {
    /// A worker's snapshot refresher over this database that keeps `directory` current.
    func objectRefresher(_ directory: ObjectDirectory) -> SnapshotRefresher {
        SnapshotRefresher(
            database: database, box: box,
            store: SnapshotStore(
                defaults: RequestSettings(
                    maxBodyBytes: 1 << 20, firstByteTimeout: .seconds(5), connectTimeout: nil,
                    selector: KeySelector(strategy: .roundRobin, database: database), maxAttempts: 3)),
            objects: directory, interval: .seconds(1), logger: Logger(label: "test"))
    }
}
