import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared
@testable import StatsCollector

@Suite("Admin API: cached, reasoning and audio tokens and the cache hit rate")
struct AdminTokenDetailsTests {
    /// A row for `key` / `token` with the given counts.
    private static func row(
        _ id: String, ms: Int64, key: Int64, token: Int64?, model: String, prompt: Int, cached: Int?,
        reasoning: Int? = nil, audioIn: Int? = nil, audioOut: Int? = nil
    ) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: ms, worker: 0, keyID: key, tokenID: token, model: model, method: "POST",
            path: "/v1/responses", status: 200, latencyMs: 10, ttfbMs: 5, streamed: false, promptTokens: prompt,
            completionTokens: 100, totalTokens: prompt + 100, error: nil, cachedTokens: cached,
            reasoningTokens: reasoning, audioInputTokens: audioIn, audioOutputTokens: audioOut)
    }

    @Test("usage rows, totals, and per key, model, token and hour figures carry the counts and the hit rate")
    func figures() async throws {
        let harness = try AdminHarness()
        _ = try await harness.test.keys.add(name: "one", value: "sk-details-key-00000001")
        _ = try await harness.test.keys.add(name: "two", value: "sk-details-key-00000002")
        let (token, _) = try await harness.test.tokens.create(name: "team")
        let tokenID = try #require(token.id)
        let now = harness.clock.now
        let rows = [
            Self.row(
                "a", ms: now - 1000, key: 1, token: tokenID, model: "o3", prompt: 2000, cached: 1500, reasoning: 300),
            Self.row(
                "b", ms: now - 2000, key: 1, token: tokenID, model: "o3", prompt: 2000, cached: 500, reasoning: 100),
            Self.row(
                "c", ms: now - 3000, key: 2, token: nil, model: "gpt-realtime", prompt: 400, cached: 0, audioIn: 300,
                audioOut: 200),
            // No cached count reported: neither cached tokens nor the hit rate's denominator.
            Self.row(
                "d", ms: now - 4000, key: 2, token: tokenID, model: "text-embedding-3-small", prompt: 800, cached: nil),
        ]
        _ = try await harness.test.database.pool.write { db in try UsageBatchWriter.commit(rows, db) }
        try await harness.run { client in
            let page = try await client.call(.get, "/api/usage?limit=10")
            let entries = try #require(page.object["data"] as? [[String: Any]])
            let byID = Dictionary(uniqueKeysWithValues: entries.map { ($0["request_id"] as? String ?? "", $0) })
            #expect(byID["a"]?["cached_tokens"] as? Int == 1500)
            #expect(byID["a"]?["reasoning_tokens"] as? Int == 300)
            #expect(byID["c"]?["audio_input_tokens"] as? Int == 300)
            #expect(byID["c"]?["audio_output_tokens"] as? Int == 200)
            // Absent is null, not 0.
            #expect(byID["d"]?["cached_tokens"] is NSNull)
            #expect(byID["d"]?["reasoning_tokens"] is NSNull)

            let usage = try #require(
                try await client.call(.get, "/api/stats/usage?period=today").object["totals"] as? [String: Any])
            #expect(usage["cached_tokens"] as? Int == 2000)
            #expect(usage["reasoning_tokens"] as? Int == 400)
            #expect(usage["audio_input_tokens"] as? Int == 300)
            #expect(usage["audio_output_tokens"] as? Int == 200)
            // 2000 cached of 4400 prompt tokens in the rows that reported a cached count.
            #expect(abs((usage["cache_hit_rate"] as? Double ?? 0) - 2000.0 / 4400.0) < 1e-12)
            let overview = try await client.call(.get, "/api/stats/overview")
            #expect((overview.object["all_time"] as? [String: Any])?["cached_tokens"] as? Int == 2000)

            let keys = try await client.call(.get, "/api/stats/keys")
            let one = try #require(keys.array.first { $0["key_id"] as? Int == 1 })
            let two = try #require(keys.array.first { $0["key_id"] as? Int == 2 })
            #expect(one["cached_tokens"] as? Int == 2000)
            #expect(one["reasoning_tokens"] as? Int == 400)
            #expect(one["cache_hit_rate"] as? Double == 0.5)
            #expect(two["cached_tokens"] as? Int == 0)
            #expect(two["cache_hit_rate"] as? Double == 0)
            #expect(two["audio_output_tokens"] as? Int == 200)
            let onlyTwo = try await client.call(.get, "/api/stats/keys?key_id=2")
            #expect(onlyTwo.array.count == 1)
            #expect(onlyTwo.array.first?["audio_input_tokens"] as? Int == 300)

            // The keys list and one key carry the same figures.
            let listed = try await client.call(.get, "/api/keys")
            let first = try #require(listed.array.first { $0["id"] as? Int == 1 })
            #expect(first["cached_tokens"] as? Int == 2000)
            #expect(first["cache_hit_rate"] as? Double == 0.5)
            let second = try await client.call(.get, "/api/keys/2")
            #expect(second.object["audio_output_tokens"] as? Int == 200)
            #expect(second.object["reasoning_tokens"] as? Int == 0)

            let models = try await client.call(.get, "/api/stats/models")
            func totals(_ model: String) -> [String: Any]? {
                models.array.first { $0["model_name"] as? String == model }?["totals"] as? [String: Any]
            }
            #expect(totals("o3")?["cache_hit_rate"] as? Double == 0.5)
            #expect(totals("o3")?["reasoning_tokens"] as? Int == 400)
            #expect(totals("text-embedding-3-small")?["cache_hit_rate"] is NSNull)
            #expect(totals("text-embedding-3-small")?["cached_tokens"] as? Int == 0)

            let tokens = try await client.call(.get, "/api/stats/tokens")
            #expect(tokens.status == .ok, "\(tokens.text)")
            #expect(tokens.array.count == 1)
            let team = try #require(tokens.array.first)
            #expect(team["token_id"] as? Int == Int(tokenID))
            #expect(team["name"] as? String == "team")
            let teamTotals = try #require(team["totals"] as? [String: Any])
            #expect(teamTotals["requests"] as? Int == 3)
            #expect(teamTotals["cached_tokens"] as? Int == 2000)
            #expect(teamTotals["cache_hit_rate"] as? Double == 0.5)
            #expect(try await client.call(.get, "/api/stats/tokens?token_id=99").array.isEmpty)
            #expect(try await client.call(.get, "/api/stats/tokens?token_id=x").status == .badRequest)

            let hourly = try await client.call(.get, "/api/stats/hourly?hours=2")
            let hours = try #require(hourly.object["data"] as? [[String: Any]])
            let summed = hours.compactMap { ($0["totals"] as? [String: Any])?["cached_tokens"] as? Int }.reduce(0, +)
            #expect(summed == 2000)
            #expect((hours.first?["totals"] as? [String: Any])?.keys.contains("cache_hit_rate") == true)
        }
    }
}
