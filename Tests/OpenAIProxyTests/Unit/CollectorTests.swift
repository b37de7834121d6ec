import Foundation
import GRDB
import Logging
import ServiceLifecycle
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
        #expect(UsageWire.decode(Array("u1\tid".utf8)) == nil)
        // One field too many or too few rejects the line.
        let valid = Array(UsageWire.encode(original).dropLast())
        #expect(UsageWire.decode(valid + Array("\t".utf8)) == nil)
        #expect(UsageWire.decode(Array(valid[..<valid.lastIndex(of: UInt8(ascii: "\t"))!])) == nil)
        // The chat-history fields travel too, texts with tabs and newlines included.
        var chat = original
        chat.tokensEstimated = true
        chat.keepsChatHistory = true
        chat.chatRequest = "[{\"role\":\"user\",\"content\":\"a\tb\nc\"}]"
        chat.chatResponse = "line one\nline two"
        let chatLine = UsageWire.encode(chat)
        #expect(chatLine.dropLast().contains(UInt8(ascii: "\n")) == false)
        #expect(UsageWire.decode(chatLine.dropLast()) == chat)
        // Acknowledgements.
        #expect(UsageWire.acknowledgement(42) == Array("a42\n".utf8))
        #expect(UsageWire.decodeAcknowledgement(Array("a42".utf8)) == 42)
        #expect(UsageWire.decodeAcknowledgement(Array("a-1".utf8)) == nil)
        #expect(UsageWire.decodeAcknowledgement(Array("b42".utf8)) == nil)
        #expect(UsageWire.decodeAcknowledgement(Array("a".utf8)) == nil)
    }

    @Test("chat texts longer than the largest field are cut so the line stays within the limit")
    func wireCutsChatTexts() throws {
        var long = row("r3", key: 1, token: 1, model: "m", status: 200, prompt: 1, completion: 1)
        long.chatRequest = String(repeating: "\t", count: UsageWire.maximumChatFieldBytes + 10)
        long.chatResponse = String(repeating: "ü", count: UsageWire.maximumChatFieldBytes)
        let line = UsageWire.encode(long)
        #expect(line.count < UsageWire.maximumLineBytes)
        let decoded = try #require(UsageWire.decode(Array(line.dropLast())))
        #expect(decoded.chatRequest?.utf8.count == UsageWire.maximumChatFieldBytes)
        #expect(decoded.chatResponse?.utf8.count == UsageWire.maximumChatFieldBytes)
        #expect(UsageWire.truncated("héllo", bytes: 2) == "h")
        #expect(UsageWire.truncated("héllo", bytes: 3) == "hé")
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
        #expect(inserted.map(\.requestID) == ["r1", "r2", "r3", "r4"])
        let again = try await test.database.pool.write { db in try UsageBatchWriter.commit(Array(rows.prefix(2)), db) }
        #expect(again.isEmpty)
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

    @Test("chat history: one row per new proxied chat request, texts only when sent, none for a duplicate")
    func chatHistory() async throws {
        let test = try TestDatabase()
        var metadata = row("c1", key: 1, token: 1, model: "gpt", status: 200, prompt: 3, completion: 4)
        metadata.keepsChatHistory = true
        var full = row("c2", key: 1, token: 1, model: "gpt", status: 200, prompt: 5, completion: 6)
        full.keepsChatHistory = true
        full.tokensEstimated = true
        full.chatRequest = "[{\"role\":\"user\",\"content\":\"hi\"}]"
        full.chatResponse = "hello"
        let off = row("c3", key: 1, token: 1, model: "gpt", status: 200, prompt: 1, completion: 1)
        let first = [metadata, full, off, full]
        let again = [metadata]
        let request = full.chatRequest
        _ = try await test.database.pool.write { db in try UsageBatchWriter.commit(first, db) }
        _ = try await test.database.pool.write { db in try UsageBatchWriter.commit(again, db) }
        try await test.database.pool.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM chat_history ORDER BY request_id")
            #expect(rows.map { $0["request_id"] as String } == ["c1", "c2"])
            #expect(rows[0]["request"] as String? == nil && rows[0]["response"] as String? == nil)
            #expect(rows[0]["prompt_tokens"] as Int == 3 && rows[0]["status"] as Int == 200)
            #expect(
                rows[0]["key_id"] as Int == 1 && rows[0]["token_id"] as Int == 1 && rows[0]["model"] as String == "gpt")
            #expect(rows[0]["latency_ms"] as Double == 10 && rows[0]["ts"] as Int64 == 1_700_000_000_000)
            #expect(rows[1]["request"] as String == request && rows[1]["response"] as String == "hello")
            #expect(rows[1]["tokens_estimated"] as Bool)
            #expect(
                try Bool.fetchOne(db, sql: "SELECT tokens_estimated FROM usage_log WHERE request_id = 'c2'") == true)
        }
    }

    @Test("multi-row inserts: every row of a batch of odd size is stored once, duplicates in any chunk skipped")
    func multiRowInsert() async throws {
        let test = try TestDatabase()
        // 64 + 8 + 1-row statements: 64 + 2 × 8 + 3 × 1 = 83 rows.
        var sizes: [Int] = []
        MultiRowInsert.chunks(of: 83) { sizes.append($0.count) }
        #expect(sizes == [64, 8, 8, 1, 1, 1])
        var chunked: [Range<Int>] = []
        MultiRowInsert.chunks(of: 9) { chunked.append($0) }
        #expect(chunked == [0..<8, 8..<9])
        func rows(_ ids: some Sequence<Int>) -> [UsageRow] {
            ids.map { index in
                var row = row("d\(index)", key: nil, token: nil, model: "m", status: 200, prompt: index, completion: 1)
                row.keepsChatHistory = index % 2 == 0
                return row
            }
        }
        let first = rows(0..<70)
        let stored = try await test.database.pool.write { db in try UsageBatchWriter.commit(first, db) }
        #expect(stored == first)
        // Known rows in the 64-row chunk and in the 8-row one, a repeat inside the batch, and new rows between.
        var second = rows(60..<130)
        second.insert(contentsOf: rows([125]), at: 70)
        second.insert(contentsOf: rows([3]), at: 66)
        let batch = second
        let new = try await test.database.pool.write { db in try UsageBatchWriter.commit(batch, db) }
        #expect(new.map(\.requestID) == (70..<130).map { "d\($0)" })
        try await test.database.pool.read { db throws in
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") == 130)
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT request_id) FROM usage_log") == 130)
            #expect(try Int.fetchOne(db, sql: "SELECT SUM(prompt_tokens) FROM usage_log") == (0..<130).reduce(0, +))
            #expect(try Int.fetchOne(db, sql: "SELECT SUM(requests) FROM usage_hourly") == 130)
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chat_history") == 65)
            #expect(
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log WHERE ttfb_ms IS NULL OR model IS NULL") == 0)
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log WHERE key_id IS NOT NULL") == 0)
        }
    }

    @Test("retention prunes the request log and chat history past the cutoff; aggregates stay")
    func retention() async throws {
        let test = try TestDatabase()
        var rows: [UsageRow] = []
        for index in 0..<12 {
            var old = row(
                "old\(index)", key: nil, token: nil, model: "m", status: 200, prompt: 1, completion: 1,
                at: 1_000_000_000_000)
            old.keepsChatHistory = true
            rows.append(old)
        }
        rows.append(row("new", key: nil, token: nil, model: "m", status: 200, prompt: 1, completion: 1))
        let batch = rows
        _ = try await test.database.pool.write { db in try UsageBatchWriter.commit(batch, db) }
        let removed = try await LogMaintenance.prune(test.database, olderThan: 1_500_000_000_000, chunk: 5)
        #expect(removed == 24)
        try await test.database.pool.read { db throws in
            #expect(try String.fetchAll(db, sql: "SELECT request_id FROM usage_log") == ["new"])
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chat_history") == 0)
            #expect(try Int.fetchOne(db, sql: "SELECT SUM(requests) FROM usage_hourly") == 13)
        }
    }

    @Test("a TRUNCATE checkpoint empties the WAL, and waits only so long for a reader that holds it")
    func checkpoint() async throws {
        let test = try TestDatabase()
        let rows = (0..<2000).map {
            row("w\($0)", key: nil, token: nil, model: "m", status: 200, prompt: 1, completion: 1)
        }
        _ = try await test.database.pool.write { db in try UsageBatchWriter.commit(rows, db) }
        let wal = test.directory.file("test.db-wal")
        func walSize() -> Int { (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? -1 }
        #expect(walSize() > 0)
        // A reader in the middle of a transaction on a snapshot that needs the WAL: the checkpoint gives up.
        let reader = try DatabaseQueue(path: test.directory.file("test.db"))
        let outcome = try await reader.read { db in
            _ = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log")
            return LogMaintenance.truncateWAL(databasePath: test.directory.file("test.db"), wait: .milliseconds(50))
        }
        if case .success = outcome { Issue.record("the checkpoint did not wait for the reader") }
        // Once it is done, the WAL is emptied.
        if case .failure(let error) = LogMaintenance.truncateWAL(
            databasePath: test.directory.file("test.db"), wait: .milliseconds(50))
        {
            Issue.record("checkpoint failed: \(error)")
        }
        #expect(walSize() == 0)
    }

    @Test("a batch is committed as soon as it is full, without waiting for the interval")
    func batchBySize() async throws {
        let test = try TestDatabase()
        let writer = UsageBatchWriter(
            database: test.database, interval: .seconds(3600), batchSize: 10, logger: Logger(label: "test"))
        let group = ServiceGroup(configuration: .init(services: [writer], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        for index in 0..<9 {
            writer.enqueue(row("b\(index)", key: nil, token: nil, model: "m", status: 200, prompt: 1, completion: 1))
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(writer.pending == 9, "9 rows: below the batch size, so they wait for the interval")
        writer.enqueue(row("b9", key: nil, token: nil, model: "m", status: 200, prompt: 1, completion: 1))
        #expect(await eventually { writer.pending == 0 })
        #expect(
            try await test.database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") }
                == 10)
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test("metrics count new rows by key and model, errors by reason, tokens, and the batch")
    func metrics() {
        let metrics = UsageMetrics()
        var streamed = row("m1", key: 2, token: 1, model: "gpt", status: 200, prompt: 10, completion: 5)
        streamed.streamed = true
        streamed.cachedTokens = 8
        streamed.reasoningTokens = 0
        let rows = [
            streamed,
            row("m2", key: 2, token: 1, model: "gpt", status: 200, prompt: 20, completion: 7),
            row("m3", key: 2, token: 1, model: "gpt", status: 500, prompt: nil, completion: nil),
            row("m4", key: nil, token: nil, model: nil, status: 401, prompt: nil, completion: nil),
        ]
        metrics.recordBatch(new: rows, received: 5, took: .milliseconds(3), nowMs: 1_700_000_001_000)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        for line in [
            #"openai_proxy_requests_total{key="2",model="gpt"} 3"#,
            #"openai_proxy_requests_total{key="none",model="none"} 1"#,
            #"openai_proxy_request_errors_total{key="2",model="gpt",reason="upstream_error"} 1"#,
            #"openai_proxy_tokens_total{key="2",model="gpt",kind="prompt"} 30"#,
            #"openai_proxy_tokens_total{key="2",model="gpt",kind="completion"} 12"#,
            #"openai_proxy_tokens_total{key="2",model="gpt",kind="cached"} 8"#,
            #"openai_proxy_tokens_total{key="2",model="gpt",kind="reasoning"} 0"#,
            #"openai_proxy_request_duration_seconds_count{streamed="true"} 1"#,
            #"openai_proxy_request_duration_seconds_count{streamed="false"} 3"#,
            "openai_proxy_collector_rows_committed_total 4",
            "openai_proxy_collector_duplicate_rows_total 1",
            "openai_proxy_collector_batch_rows_count 1",
            "openai_proxy_collector_lag_seconds 0.99",
        ] {
            #expect(text.contains(line + "\n"), "missing: \(line)")
        }
        // A detail no row reported makes no series (absent is not 0).
        #expect(!text.contains(#"kind="audio_input""#))
    }
}
