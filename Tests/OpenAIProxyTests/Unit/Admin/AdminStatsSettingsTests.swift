import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared
@testable import StatsCollector

@Suite("Admin API: statistics, request log, audit, settings")
struct AdminStatsSettingsTests {
    /// A usage row at `ms` for key 1 / token `token`.
    static func row(
        _ id: String, ms: Int64, model: String, status: Int = 200, token: Int64? = nil, latency: Double = 10
    ) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: ms, worker: 0, keyID: 1, tokenID: token, model: model, method: "POST",
            path: "/v1/chat/completions", status: status, latencyMs: latency, ttfbMs: 5, streamed: false,
            promptTokens: 3,
            completionTokens: 2, totalTokens: 5, error: nil)
    }

    @Test("the overview's latency percentiles are today's, from the request log")
    func latencyPercentiles() async throws {
        let harness = try AdminHarness()
        let now = harness.clock.now
        let startOfDay = now - now % 86_400_000
        // 20 requests today taking 1…20 ms (in shuffled order), and a slow one yesterday that must not count.
        var rows = (1...20).shuffled().map {
            Self.row("t\($0)", ms: startOfDay + Int64($0), model: "m", latency: Double($0))
        }
        rows.append(Self.row("y", ms: startOfDay - 1, model: "m", latency: 999))
        let seeded = rows
        _ = try await harness.test.database.pool.write { db in try UsageBatchWriter.commit(seeded, db) }
        try await harness.run { client in
            let latency = try #require(
                try await client.call(.get, "/api/stats/overview").object["latency_today"] as? [String: Any])
            #expect(latency["samples"] as? Int == 20)
            #expect(latency["p50_ms"] as? Double == 10)
            #expect(latency["p95_ms"] as? Double == 19)
            #expect(latency["p99_ms"] as? Double == 20)
        }
    }

    @Test("stats read what the collector recorded; bad parameters are 400s naming them")
    func stats() async throws {
        let harness = try AdminHarness()
        _ = try await harness.test.keys.add(name: "k", value: "sk-stats-key-0123456789")
        let now = harness.clock.now
        let rows = [
            Self.row("a", ms: now - 1000, model: "gpt-a"), Self.row("b", ms: now - 2000, model: "gpt-b", status: 429),
            Self.row("c", ms: now - 3 * 86_400_000, model: "gpt-a", token: 7),
            Self.row("d", ms: now - 40 * 86_400_000, model: "gpt-a"),
        ]
        _ = try await harness.test.database.pool.write { db in try UsageBatchWriter.commit(rows, db) }
        try await harness.run { client in
            let overview = try await client.call(.get, "/api/stats/overview")
            #expect(overview.status == .ok)
            #expect((overview.object["keys"] as? [String: Int])?["active"] == 1)
            #expect((overview.object["all_time"] as? [String: Any])?["requests"] as? Int == 4)
            #expect((overview.object["last_hour"] as? [String: Any])?["failures"] as? Int == 1)

            for (period, requests) in [("all", 4), ("today", 2), ("7d", 3), ("30d", 3)] {
                let answer = try await client.call(.get, "/api/stats/usage?period=\(period)")
                #expect((answer.object["totals"] as? [String: Any])?["requests"] as? Int == requests, "\(period)")
            }
            // Requests per status over a period, from the request log.
            for (period, expected) in [("all", [[200, 3], [429, 1]]), ("today", [[200, 1], [429, 1]])] {
                let answer = try await client.call(.get, "/api/stats/statuses?period=\(period)")
                let data = try #require(answer.object["data"] as? [[String: Any]])
                #expect(
                    data.map { [$0["status"] as? Int ?? -1, $0["requests"] as? Int ?? -1] } == expected, "\(period)")
            }
            #expect(try await client.call(.get, "/api/stats/statuses?period=week").status == .badRequest)
            let hourly = try await client.call(.get, "/api/stats/hourly?hours=3")
            let hours = try #require(hourly.object["data"] as? [[String: Any]])
            #expect(hours.count == 3)
            #expect((hours.last?["totals"] as? [String: Any])?["requests"] as? Int == 2)

            let keys = try await client.call(.get, "/api/stats/keys?key_id=1")
            #expect(keys.array.first?["requests"] as? Int == 4)
            #expect(keys.array.first?["key_hint"] as? String == "sk-…6789")
            #expect(try await client.call(.get, "/api/stats/keys?key_id=9").status == .notFound)
            let models = try await client.call(.get, "/api/stats/models")
            #expect(models.array.compactMap { $0["model_name"] as? String } == ["gpt-a", "gpt-b"])
            let one = try await client.call(.get, "/api/stats/models?model_name=gpt-b")
            #expect(one.array.count == 1)

            let page = try await client.call(.get, "/api/usage?limit=2&offset=1")
            #expect(page.object["total"] as? Int == 4)
            let data = try #require(page.object["data"] as? [[String: Any]])
            #expect(data.compactMap { $0["request_id"] as? String } == ["b", "c"])
            let filtered = try await client.call(.get, "/api/usage?model=gpt-a&token_id=7")
            #expect(filtered.object["total"] as? Int == 1)
            #expect(try await client.call(.get, "/api/usage?status=429&key_id=1").object["total"] as? Int == 1)
            let window = try await client.call(
                .get, "/api/usage?from=\(now - 5 * 86_400_000)&to=\(ISOTime.format(now))")
            #expect(window.object["total"] as? Int == 3)

            let bad: [(String, String)] = [
                ("/api/stats/usage?period=year", "period"), ("/api/stats/hourly?hours=-1", "hours"),
                ("/api/stats/hourly?hours=abc", "hours"), ("/api/stats/hourly?hours=721", "hours"),
                ("/api/stats/keys?key_id=x", "key_id"), ("/api/stats/models?model_name=", "model_name"),
                ("/api/usage?limit=abc", "limit"), ("/api/usage?limit=0", "limit"), ("/api/usage?offset=-1", "offset"),
                ("/api/usage?key_id=0", "key_id"), ("/api/usage?token_id=t", "token_id"),
                ("/api/usage?status=99", "status"),
                ("/api/usage?model=", "model"), ("/api/usage?from=yesterday", "from"), ("/api/usage?to=x", "to"),
                ("/api/usage?from=2000&to=1000", "from"), ("/api/audit?limit=501", "limit"),
                ("/api/audit?offset=x", "offset"), ("/api/audit?action=", "action"),
                ("/api/chat/history?limit=abc", "limit"), ("/api/chat/history?offset=-2", "offset"),
            ]
            for (uri, param) in bad {
                let answer = try await client.call(.get, uri)
                #expect(answer.status == .badRequest, "\(uri)")
                #expect(answer.errorParam == param, "\(uri): \(answer.text)")
            }
        }
    }

    @Test("settings: the configuration's values, changed live (moving the generation), reset with null")
    func settings() async throws {
        var changed = ProxyConfiguration.defaults(cores: 2)
        changed.rotationStrategy = .random
        let configuration = changed
        let harness = try AdminHarness(configuration: configuration)
        try await harness.run { client in
            let initial = try await client.call(.get, "/api/settings")
            #expect(initial.object["rotation_strategy"] as? String == "random")
            #expect(initial.object["overridden"] as? [String] == [])
            let before = try await harness.test.generation()
            let changed = try await client.call(
                .put, "/api/settings", json: #"{"rotation_strategy":"least_used","max_body_bytes":4096}"#)
            #expect(changed.status == .ok)
            #expect(changed.object["rotation_strategy"] as? String == "least_used")
            #expect(changed.object["max_body_bytes"] as? Int == 4096)
            #expect(changed.object["overridden"] as? [String] == ["max_body_bytes", "rotation_strategy"])
            #expect(try await harness.test.generation() > before, "workers see the change")
            let live = try await harness.test.database.pool.read { db in
                try LiveSettings.load(db, configuration: configuration)
            }
            #expect(live.rotationStrategy == .leastUsed)
            #expect(live.maxBodyBytes == 4096)

            let reset = try await client.call(.put, "/api/settings", json: #"{"rotation_strategy":null}"#)
            #expect(reset.object["rotation_strategy"] as? String == "random")
            for (body, param) in [
                (#"{"rotation_strategy":"fastest"}"#, "rotation_strategy"),
                (#"{"rotation_strategy":3}"#, "rotation_strategy"),
                (#"{"max_body_bytes":10}"#, "max_body_bytes"), (#"{"max_body_bytes":"big"}"#, "max_body_bytes"),
                (#"{"first_byte_timeout_seconds":0}"#, "first_byte_timeout_seconds"),
                (#"{"upstream_connect_timeout_seconds":61}"#, "upstream_connect_timeout_seconds"),
                (#"{"workers":4}"#, "workers"),
            ] {
                let answer = try await client.call(.put, "/api/settings", json: body)
                #expect(answer.status == .badRequest, "\(body)")
                #expect(answer.errorParam == param, "\(body): \(answer.text)")
            }
            let audit = try await client.call(.get, "/api/audit?action=settings.update&limit=1")
            #expect(audit.object["total"] as? Int == 2)
            #expect(audit.text.contains(#"\"rotation_strategy\":null"#))
        }
        // A stored value that no longer parses falls back to the configuration's value.
        try await harness.test.database.pool.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO settings (name, value, updated_at) VALUES ('max_body_bytes', 'junk', 0)")
            try db.execute(sql: "INSERT INTO settings (name, value, updated_at) VALUES ('retired_setting', '1', 0)")
        }
        let fallback = try await harness.test.database.pool.read { db in
            try LiveSettings.load(db, configuration: configuration)
        }
        #expect(fallback == LiveSettings.defaults(configuration))
    }
}
