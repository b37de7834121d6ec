import Foundation
import GRDB
import Testing

@testable import Shared
@testable import StatsCollector

@Suite("Stats collector")
struct CollectorTests {
    private func row(
        _ id: String, key: Int64?, token: Int64?, model: String?, status: Int, prompt: Int?, completion: Int?,
        at timestamp: Int64 = 1_700_000_000_000
    ) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: timestamp, worker: 0, keyID: key, tokenID: token, model: model, method: "POST",
            path: "/v1/chat/completions", status: status, latencyMs: 10, ttfbMs: 4, streamed: false,
            promptTokens: prompt, completionTokens: completion, totalTokens: prompt.map { $0 + (completion ?? 0) },
            error: status >= 400 ? "upstream_error" : nil)
    }

    @Test("the wire format round-trips and is one line")
    func wire() {
        let original = row("r1", key: 3, token: 1, model: "m\nx", status: 200, prompt: 1, completion: 2)
        let line = UsageWire.encode(original)
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false)
        #expect(UsageWire.decode(line.dropLast()) == original)
        #expect(UsageWire.decode(Array("{not json".utf8)) == nil)
        // Escapes survive, absent values stay absent, and a malformed number rejects the line.
        var odd = original
        odd.model = "tab\there \\ back"
        odd.ttfbMs = nil
        odd.promptTokens = nil
        odd.error = "x"
        #expect(UsageWire.decode(Array(UsageWire.encode(odd).dropLast())) == odd)
        var text = String(decoding: UsageWire.encode(original).dropLast(), as: UTF8.self)
        text = text.replacingOccurrences(of: "\t200\t", with: "\t2x0\t")
        #expect(UsageWire.decode(Array(text.utf8)) == nil)
        #expect(UsageWire.decode(Array("u2\tid".utf8)) == nil)
    }

    @Test("an overlong text field is cut at a character boundary so the line stays within the limit")
    func wireCutsLongFields() throws {
        var long = row("r2", key: 1, token: 1, model: "m", status: 200, prompt: 1, completion: 1)
        long.path = "/v1/" + String(repeating: "é\t", count: 40_000)
        let line = UsageWire.encode(long)
        #expect(line.count < UsageWire.maximumLineBytes)
        let decoded = try #require(UsageWire.decode(Array(line.dropLast())))
        #expect(decoded.path.hasPrefix("/v1/é\t"))
        #expect(decoded.path.utf8.count <= UsageWire.maximumFieldBytes)
        #expect(!decoded.path.contains("\u{FFFD}"), "no character was split")
        #expect(decoded.requestID == "r2" && decoded.status == 200)
    }

    @Test("a row sent twice counts once, and aggregates equal the sums of the rows")
    func idempotentAggregates() async throws {
        let test = try TestDatabase()
        _ = try await test.keys.add(name: "a", value: "sk-collector-000000001")
        let (token, _) = try await test.tokens.create(name: "t")
        let rows = [
            row("r1", key: 1, token: token.id, model: "gpt", status: 200, prompt: 10, completion: 5),
            row("r2", key: 1, token: token.id, model: "gpt", status: 200, prompt: 20, completion: 7),
            row("r3", key: 1, token: token.id, model: "gpt", status: 500, prompt: nil, completion: nil),
            row("r4", key: nil, token: nil, model: nil, status: 401, prompt: nil, completion: nil),
        ]
        let inserted = try await test.database.pool.write { db in try UsageBatchWriter.commit(rows, db) }
        #expect(inserted == 4)
        let again = try await test.database.pool.write { db in try UsageBatchWriter.commit(Array(rows.prefix(2)), db) }
        #expect(again == 0)
        try await test.database.pool.read { db in
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") == 4)
            let hourly = try Row.fetchOne(
                db,
                sql:
                    "SELECT SUM(requests) r, SUM(successes) s, SUM(failures) f, SUM(prompt_tokens) p, SUM(completion_tokens) c FROM usage_hourly"
            )!
            let log = try Row.fetchOne(
                db,
                sql:
                    "SELECT COUNT(*) r, SUM(status < 400) s, SUM(status >= 400) f, SUM(prompt_tokens) p, SUM(completion_tokens) c FROM usage_log"
            )!
            for column in ["r", "s", "f", "p", "c"] {
                #expect(hourly[column] as Int64 == log[column] as Int64, "\(column)")
            }
            let key = try Row.fetchOne(
                db, sql: "SELECT usage_count, success_count, failure_count, prompt_tokens FROM keys WHERE id = 1")!
            #expect(key["usage_count"] as Int64 == 3)
            #expect(key["success_count"] as Int64 == 2)
            #expect(key["failure_count"] as Int64 == 1)
            #expect(key["prompt_tokens"] as Int64 == 30)
            #expect(
                try Int64.fetchOne(db, sql: "SELECT usage_count FROM usage_stats WHERE key_id = 1 AND model = 'gpt'")
                    == 3)
            #expect(try Int64.fetchOne(db, sql: "SELECT request_count FROM client_tokens") == 3)
            #expect(try Int64.fetchOne(db, sql: "SELECT hour FROM usage_hourly LIMIT 1") == 1_699_999_200)
        }
    }
}
