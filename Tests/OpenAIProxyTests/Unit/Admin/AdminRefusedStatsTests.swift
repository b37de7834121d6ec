import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared
@testable import StatsCollector

@Suite("Admin API: requests refused before authentication")
struct AdminRefusedStatsTests {
    @Test("GET /api/stats/refused sums the per-minute counts by reason over the period, zero for the others")
    func refused() async throws {
        let harness = try AdminHarness()
        let now = harness.clock.now
        let thisMinute = RefusedCount.minute(of: now)
        let startOfDay = now - now % 86_400_000
        let counts = [
            RefusedCount(source: "w0-a", minute: thisMinute, reason: .invalidToken, count: 7),
            RefusedCount(source: "w1-b", minute: thisMinute, reason: .invalidToken, count: 3),
            RefusedCount(source: "w0-a", minute: thisMinute - 60_000, reason: .unknownPath, count: 2),
            // Yesterday: in "all" and "7d", not in "today".
            RefusedCount(source: "w0-a", minute: startOfDay - 60_000, reason: .missingToken, count: 5),
        ]
        _ = try await harness.test.database.pool.write { db in try UsageBatchWriter.commit(counts, db) }
        try await harness.run { client in
            let today = try await client.call(.get, "/api/stats/refused?period=today")
            #expect(today.status == .ok)
            #expect(today.object["period"] as? String == "today")
            #expect(today.object["total"] as? Int == 12)
            #expect(
                today.object["by_reason"] as? [String: Int] == [
                    "invalid_token": 10, "unknown_path": 2, "missing_token": 0,
                ])
            let all = try await client.call(.get, "/api/stats/refused")
            #expect(all.object["total"] as? Int == 17)
            #expect(all.object["since"] is NSNull)
            #expect(try await client.call(.get, "/api/stats/refused?period=week").status == .badRequest)
        }
    }
}
