import Testing

@testable import Shared

/// `RotationCursorLeasing` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Rotation cursor")
struct RotationCursorTests {
    @Test("leases are consecutive blocks of the asked size, one after the other", arguments: StoreEngine.tested)
    func sequential(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            var leases: [Range<Int64>] = []
            for count in [1, 5, 1] { leases.append(try await stores.cursor.lease(count)) }
            #expect(leases == [0..<1, 1..<6, 6..<7])
            #expect(try await stores.integer("SELECT position FROM rotation_cursor WHERE id = 1") == 7)
        }
    }

    @Test("concurrent leases never overlap and together cover every position once", arguments: StoreEngine.tested)
    func concurrent(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let cursor = stores.cursor
            let leases = try await withThrowingTaskGroup(of: [Range<Int64>].self) { group in
                for task in 0..<8 {
                    group.addTask {
                        var leases: [Range<Int64>] = []
                        for round in 0..<25 { leases.append(try await cursor.lease(1 + (task + round) % 4)) }
                        return leases
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let asked = (0..<8).reduce(0) { sum, task in sum + (0..<25).reduce(0) { $0 + 1 + (task + $1) % 4 } }
            let positions = leases.flatMap { $0 }.sorted()
            #expect(positions == Array(0..<Int64(asked)))
        }
    }
}
