import Foundation
import GRDB
import Testing

@testable import ProxyWorker
@testable import Shared

@Suite("Rotation")
struct RotationTests {
    private func keys(_ count: Int) -> [RoutableKey] {
        (1...count).map { RoutableKey(id: Int64($0), hint: "k\($0)", value: "value-\($0)") }
    }

    @Test("cursor leases are contiguous and never overlap")
    func cursorLeases() async throws {
        let test = try TestDatabase()
        let cursor = RotationCursor(database: test.database)
        let first = try await cursor.lease(1)
        let second = try await cursor.lease(5)
        let third = try await cursor.lease(2)
        #expect(first == 0..<1)
        #expect(second == 1..<6)
        #expect(third == 6..<8)
    }

    @Test("block sizes are 1 when light, else a multiple of the key count")
    func blockSizes() {
        #expect(PositionLease.blockSize(rate: 5, keyCount: 3, leasesPerSecond: 20, maximum: 4096) == 1)
        #expect(PositionLease.blockSize(rate: 39, keyCount: 3, leasesPerSecond: 20, maximum: 4096) == 1)
        #expect(PositionLease.blockSize(rate: 100, keyCount: 3, leasesPerSecond: 20, maximum: 4096) == 6)
        #expect(PositionLease.blockSize(rate: 10_000, keyCount: 7, leasesPerSecond: 20, maximum: 4096) == 504)
        #expect(PositionLease.blockSize(rate: 1e9, keyCount: 3, leasesPerSecond: 20, maximum: 4096) == 4095)
    }

    @Test("two workers sharing the cursor use keys in strict turn under light traffic")
    func strictTurnAcrossWorkers() async throws {
        let test = try TestDatabase()
        let candidates = keys(3)
        let workerA = KeySelector(strategy: .roundRobin, database: test.database)
        let workerB = KeySelector(strategy: .roundRobin, database: test.database)
        var picked: [Int64] = []
        for index in 0..<12 {
            let selector = index.isMultiple(of: 3) ? workerA : workerB
            picked.append(try #require(try await selector.pick(from: candidates)).id)
        }
        #expect(picked == [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3])
    }

    @Test("under heavy traffic every key's share stays within one per worker")
    func fairUnderLoad() async throws {
        let test = try TestDatabase()
        let candidates = keys(3)
        let workers = (0..<2).map { _ in KeySelector(strategy: .roundRobin, database: test.database) }
        let counts = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for worker in workers {
                group.addTask {
                    var ids: [Int64] = []
                    for _ in 0..<1500 { ids.append(try await worker.pick(from: candidates)!.id) }
                    return ids
                }
            }
            var counts: [Int64: Int] = [:]
            for try await ids in group { for id in ids { counts[id, default: 0] += 1 } }
            return counts
        }
        #expect(counts.values.reduce(0, +) == 3000)
        for count in counts.values { #expect(abs(count - 1000) <= 2, "\(counts)") }
        let writes = try await test.database.pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT position FROM rotation_cursor")!
        }
        #expect(writes >= 3000, "every position used was leased")
    }

    @Test("after a burst, light traffic gives up leftover rounds and is back in strict turn within a round")
    func leftoversDroppedWhenLight() async throws {
        let test = try TestDatabase()
        let cursor = RotationCursor(database: test.database)
        let lease = PositionLease(cursor: cursor)
        // A burst well above 40 picks/s: blocks of several positions are leased ahead.
        for _ in 0..<3000 { _ = try await lease.next(keyCount: 3) }
        // Light traffic: one pick closes the burst's rate window, the next one sees the light rate.
        try await Task.sleep(for: .milliseconds(300))
        _ = try await lease.next(keyCount: 3)
        try await Task.sleep(for: .milliseconds(300))
        // Whole rounds of leftovers are given up at once; what is kept (fewer than a round, so that every
        // key loses the same number of turns) is used by the next picks.
        for _ in 0..<2 { _ = try await lease.next(keyCount: 3) }
        let leasedSoFar = try await cursor.lease(1).lowerBound
        // Another worker's pick in between: strict turn means this one takes the very next position.
        #expect(try await lease.next(keyCount: 3) == leasedSoFar + 1)
    }

    @Test("blocks asked for ahead under load are leased by the worker's prefetcher, which finishes them on shutdown")
    func prefetchedInService() async throws {
        let test = try TestDatabase()
        let cursor = RotationCursor(database: test.database)
        let lease = PositionLease(cursor: cursor)
        var positions: Set<Int64> = []
        try await withRunningServices([PositionPrefetcher(lease: lease)]) {
            // A burst well above 40 picks/s: blocks are asked for before the last one runs out.
            for _ in 0..<3000 { positions.insert(try await lease.next(keyCount: 3)) }
        }
        #expect(positions.count == 3000, "no position handed out twice")
        #expect(!lease.isPrefetching, "the block asked for last was leased before the prefetcher returned")
    }

    @Test("least_used picks the lowest shared count and counts the pick")
    func leastUsed() async throws {
        let test = try TestDatabase()
        for index in 1...3 { _ = try await test.keys.add(name: "k\(index)", value: "sk-least-used-00000\(index)") }
        try await test.database.pool.write { db in
            try db.execute(sql: "UPDATE keys SET pick_count = CASE id WHEN 1 THEN 5 WHEN 2 THEN 3 ELSE 9 END")
        }
        let selector = KeySelector(strategy: .leastUsed, database: test.database)
        let candidates = keys(3)
        #expect(try await selector.pick(from: candidates)?.id == 2)
        #expect(try await selector.pick(from: candidates)?.id == 2)
        // Now 1 and 2 are level at 5; ties go to the lower id.
        #expect(try await selector.pick(from: candidates)?.id == 1)
        // Only candidates are considered, even if another key has a lower count.
        #expect(try await selector.pick(from: [candidates[2]])?.id == 3)
    }

    @Test("random picks only candidates, roughly evenly, and writes nothing")
    func random() async throws {
        let test = try TestDatabase()
        let selector = KeySelector(strategy: .random, database: test.database)
        var counts: [Int64: Int] = [:]
        for _ in 0..<3000 { counts[try await selector.pick(from: keys(3))!.id, default: 0] += 1 }
        #expect(Set(counts.keys) == [1, 2, 3])
        for count in counts.values { #expect(count > 800) }
        let position = try await test.database.pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT position FROM rotation_cursor")!
        }
        #expect(position == 0)
        #expect(try await selector.pick(from: []) == nil)
    }
}
