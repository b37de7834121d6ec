import GRDB
import Testing

@testable import Shared
@testable import StatsCollector

/// Cached, reasoning and audio token counts from the worker's row to the request log and the aggregates.
@Suite("Usage details: wire and collector")
struct UsageDetailsStorageTests {
    private func row(
        _ id: String, model: String = "o3", prompt: Int?, cached: Int? = nil, reasoning: Int? = nil,
        audioIn: Int? = nil, audioOut: Int? = nil, estimated: Bool = false
    ) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: 1_700_000_000_000, worker: 1, keyID: 1, tokenID: nil, model: model,
            method: "POST", path: "/v1/responses", status: 200, latencyMs: 12, ttfbMs: 3, streamed: true,
            promptTokens: prompt, completionTokens: 10, totalTokens: prompt.map { $0 + 10 }, error: nil,
            tokensEstimated: estimated, cachedTokens: cached, reasoningTokens: reasoning, audioInputTokens: audioIn,
            audioOutputTokens: audioOut)
    }

    @Test("u3 rows carry the four counts, absent and 0 kept apart; u2 rows decode with them absent")
    func wire() throws {
        let full = row("w1", prompt: 100, cached: 64, reasoning: 0, audioIn: 5, audioOut: 7)
        let line = UsageWire.encode(full)
        #expect(line.starts(with: Array("u3\t".utf8)))
        #expect(UsageWire.decode(Array(line.dropLast())) == full)
        let none = row("w2", prompt: 100)
        #expect(UsageWire.decode(Array(UsageWire.encode(none).dropLast())) == none)

        // A u3 line cut to u2's field count is not a u2 row, nor is a u2 line with u3's field count.
        let valid = Array(line.dropLast())
        var cut = valid
        for _ in 0..<4 { cut = Array(cut[..<cut.lastIndex(of: UInt8(ascii: "\t"))!]) }
        #expect(UsageWire.decode(cut) == nil)
        #expect(UsageWire.decode(Array("u2".utf8) + valid.dropFirst(2)) == nil)
        // A malformed count rejects the line.
        #expect(
            UsageWire.decode(Array(String(decoding: valid, as: UTF8.self).replacing("\t64\t", with: "\t6x\t").utf8))
                == nil)

        let old =
            "u2\tw3\t1700000000000\t0\t4\t\tgpt-4o\tPOST\t/v1/chat/completions\t200\t1.5\t0.5\t1\t7\t3\t10\t\t0\t0\t\t"
        let decoded = try #require(UsageWire.decode(Array(old.utf8)))
        #expect(decoded.requestID == "w3")
        #expect(decoded.keyID == 4)
        #expect(decoded.promptTokens == 7)
        #expect(decoded.streamed)
        #expect(decoded.cachedTokens == nil && decoded.reasoningTokens == nil)
        #expect(decoded.audioInputTokens == nil && decoded.audioOutputTokens == nil)
    }

    @Test("the counts land in usage_log as sent (NULL when absent) and sum into usage_hourly")
    func collector() async throws {
        let test = try TestDatabase()
        _ = try await test.keys.add(name: "a", value: "sk-details-0000000001")
        let rows = [
            row("d1", prompt: 2000, cached: 1536, reasoning: 256),
            row("d2", prompt: 1000, cached: 0, reasoning: 64, audioIn: 30, audioOut: 40),
            // Reported no details (embeddings): its prompt tokens do not count towards the hit rate.
            row("d3", model: "text-embedding-3-small", prompt: 500),
            // Estimated: no details either.
            row("d4", prompt: 9, estimated: true),
        ]
        _ = try await test.database.pool.write { db in try UsageBatchWriter.commit(rows, db) }
        // Sent again: counted once.
        _ = try await test.database.pool.write { db in try UsageBatchWriter.commit(rows, db) }
        try await test.database.pool.read { db in
            let log = try Row.fetchAll(db, sql: "SELECT * FROM usage_log ORDER BY request_id")
            #expect(log.map { $0["cached_tokens"] as Int? } == [1536, 0, nil, nil])
            #expect(log.map { $0["reasoning_tokens"] as Int? } == [256, 64, nil, nil])
            #expect(log.map { $0["audio_input_tokens"] as Int? } == [nil, 30, nil, nil])
            #expect(log.map { $0["audio_output_tokens"] as Int? } == [nil, 40, nil, nil])
            let hourly = try #require(
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT SUM(cached_tokens) c, SUM(cache_prompt_tokens) cp, SUM(reasoning_tokens) r,
                            SUM(audio_input_tokens) ai, SUM(audio_output_tokens) ao, SUM(prompt_tokens) p
                        FROM usage_hourly
                        """))
            #expect(hourly["c"] as Int64 == 1536)
            #expect(hourly["cp"] as Int64 == 3000)
            #expect(hourly["r"] as Int64 == 320)
            #expect(hourly["ai"] as Int64 == 30)
            #expect(hourly["ao"] as Int64 == 40)
            #expect(hourly["p"] as Int64 == 3509)
            let embeddings = try #require(
                try Row.fetchOne(
                    db,
                    sql:
                        "SELECT cached_tokens, cache_prompt_tokens FROM usage_hourly WHERE model = 'text-embedding-3-small'"
                ))
            #expect(embeddings["cached_tokens"] as Int64 == 0)
            #expect(embeddings["cache_prompt_tokens"] as Int64 == 0)
        }
    }

    @Test("a v9 database migrates to v10: old rows keep their counts, their details NULL / 0")
    func migration() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v9.db")
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(
                queue, upTo: "v9: objects created through the gateway, their key and client token")
            try await queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO usage_log (request_id, ts, worker, key_id, method, path, status, latency_ms,
                            prompt_tokens)
                        VALUES ('r1', 1700000000000, 0, 1, 'POST', '/v1/chat/completions', 200, 1.5, 12);
                        INSERT INTO usage_hourly (hour, key_id, model, token_id, requests, prompt_tokens)
                        VALUES (1699999200, 1, 'm', 0, 1, 12);
                        """)
            }
        }
        let database = try ProxyDatabase.open(at: path, migrate: true)
        try await database.pool.read { db in
            let log = try #require(try Row.fetchOne(db, sql: "SELECT * FROM usage_log"))
            #expect(log["prompt_tokens"] as Int == 12)
            #expect(log["cached_tokens"] as Int? == nil)
            let hourly = try #require(try Row.fetchOne(db, sql: "SELECT * FROM usage_hourly"))
            #expect(hourly["prompt_tokens"] as Int == 12)
            #expect(hourly["cached_tokens"] as Int == 0)
            #expect(hourly["cache_prompt_tokens"] as Int == 0)
        }
    }
}
