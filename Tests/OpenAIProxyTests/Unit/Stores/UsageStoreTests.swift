import Foundation
import Logging
import Testing

@testable import Shared
@testable import StatsCollector

/// `UsageStoring` on every engine: the collector's writes and the retention job's deletes, one suite, so SQLite
/// and PostgreSQL cannot drift.
@Suite("Usage store")
struct UsageStoreTests {
    private static let now: Int64 = 1_700_000_000_000

    private static func row(
        _ id: String, key: Int64? = nil, token: Int64? = nil, model: String? = "m", status: Int = 200,
        prompt: Int? = 1, completion: Int? = 1, at timestamp: Int64 = now, chat: Bool = false
    ) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: timestamp, worker: 0, keyID: key, tokenID: token, model: model, method: "POST",
            path: "/v1/chat/completions", status: status, latencyMs: 10, ttfbMs: 4, streamed: false,
            promptTokens: prompt, completionTokens: completion, totalTokens: prompt.map { $0 + (completion ?? 0) },
            error: status >= 400 ? "upstream_error" : nil, keepsChatHistory: chat)
    }

    /// A key and a client token the rows can name; their ids.
    private static func keyAndToken(_ stores: EngineStores) async throws -> (key: Int64, token: Int64) {
        guard
            case .added(let key) = try await stores.keys.add(name: "a", value: "sk-usage-store-000001", status: .active)
        else { throw StoreTestError.notAdded }
        let (token, _) = try await stores.tokens.create(name: "t", limits: ClientTokenLimits(), audit: nil)
        return (try #require(key.id), try #require(token.id))
    }

    private enum StoreTestError: Error { case notAdded }

    @Test(
        "a batch lands once even when sent twice, and the aggregates add up to the rows", arguments: StoreEngine.tested)
    func idempotentAggregates(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (key, token) = try await Self.keyAndToken(stores)
            let rows = [
                Self.row("r1", key: key, token: token, model: "gpt", prompt: 10, completion: 5),
                Self.row("r2", key: key, token: token, model: "gpt", prompt: 20, completion: 7),
                Self.row("r3", key: key, token: token, model: "gpt", status: 500, prompt: nil, completion: nil),
                Self.row("r4", model: nil, status: 401, prompt: nil, completion: nil),
            ]
            let first = try await stores.usage.commit(rows, refused: [])
            #expect(first.new.map(\.requestID) == ["r1", "r2", "r3", "r4"])
            #expect(first.refused.isEmpty)
            let again = try await stores.usage.commit(rows, refused: [])
            #expect(again.new.isEmpty, "the same batch sent again stores and counts nothing")
            #expect(try await stores.integer("SELECT COUNT(*) FROM usage_log") == 4)
            let sums = "requests, successes, failures, prompt_tokens, completion_tokens"
            let hourly = try await Self.sums(
                stores, "FROM usage_hourly", of: sums.split(separator: ",").map(String.init))
            let log = try await Self.sums(
                stores, "FROM usage_log",
                of: [
                    "1", "CASE WHEN status < 400 THEN 1 ELSE 0 END", "CASE WHEN status >= 400 THEN 1 ELSE 0 END",
                    "prompt_tokens", "completion_tokens",
                ])
            #expect(hourly == log)
            #expect(hourly == [4, 2, 2, 30, 12])
            #expect(
                try await stores.integer("SELECT hour FROM usage_hourly WHERE token_id = \(token)") == 1_699_999_200)
            #expect(try await stores.integer("SELECT COUNT(*) FROM usage_hourly") == 2)
            let keyCounts = try await Self.sums(
                stores, "FROM keys WHERE id = \(key)",
                of: ["usage_count", "success_count", "failure_count", "prompt_tokens", "completion_tokens"])
            #expect(keyCounts == [3, 2, 1, 30, 12])
            #expect(try await stores.integer("SELECT COUNT(*) FROM keys WHERE last_used IS NOT NULL") == 1)
            #expect(
                try await stores.integer("SELECT usage_count FROM usage_stats WHERE key_id = \(key) AND model = 'gpt'")
                    == 3)
            let tokenCounts = try await Self.sums(
                stores, "FROM client_tokens WHERE id = \(token)",
                of: ["request_count", "prompt_tokens", "completion_tokens"])
            #expect(tokenCounts == [3, 30, 12])
            // A later batch adds to the same aggregate rows.
            _ = try await stores.usage.commit(
                [Self.row("r5", key: key, token: token, model: "gpt", prompt: 1, completion: 1)], refused: [])
            #expect(try await stores.integer("SELECT requests FROM usage_hourly WHERE token_id = \(token)") == 4)
            #expect(try await stores.integer("SELECT usage_count FROM usage_stats WHERE key_id = \(key)") == 4)
            #expect(try await stores.integer("SELECT usage_count FROM keys WHERE id = \(key)") == 4)
            #expect(try await stores.integer("SELECT request_count FROM client_tokens WHERE id = \(token)") == 4)
        }
    }

    /// Each of `expressions` summed over `from` (a `FROM …` clause), as integers.
    private static func sums(_ stores: EngineStores, _ from: String, of expressions: [String]) async throws -> [Int64?]
    {
        var values: [Int64?] = []
        for expression in expressions {
            values.append(try await stores.integer("SELECT CAST(SUM(\(expression)) AS BIGINT) \(from)"))
        }
        return values
    }

    @Test(
        "a batch larger than one statement: rows known already and a repeat inside it are stored once",
        arguments: StoreEngine.tested)
    func largeBatches(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            func rows(_ ids: some Sequence<Int>) -> [UsageRow] {
                ids.map { Self.row("d\($0)", prompt: $0, chat: $0 % 2 == 0) }
            }
            // Past SQLite's 64-row statements and PostgreSQL's 1,000-row ones, of odd sizes.
            let first = rows(0..<1070)
            #expect(try await stores.usage.commit(first, refused: []).new == first)
            // Known rows at the start and in the middle, a repeat of a new row, new rows between.
            var second = rows(1000..<2130)
            second.insert(contentsOf: rows([2125]), at: 1080)
            second.insert(contentsOf: rows([3]), at: 1010)
            let new = try await stores.usage.commit(second, refused: []).new
            // The new rows in the batch's order, a repeated one where it first came.
            var known = Set(first.map(\.requestID))
            let expected = second.map(\.requestID).filter { known.insert($0).inserted }
            #expect(expected.count == 1060 && expected[1010] == "d2125" && !expected.contains("d3"))
            #expect(new.map(\.requestID) == expected)
            #expect(try await stores.integer("SELECT COUNT(*) FROM usage_log") == 2130)
            #expect(try await stores.integer("SELECT COUNT(DISTINCT request_id) FROM usage_log") == 2130)
            #expect(
                try await stores.integer("SELECT CAST(SUM(prompt_tokens) AS BIGINT) FROM usage_log")
                    == Int64((0..<2130).reduce(0, +)))
            #expect(try await stores.integer("SELECT CAST(SUM(requests) AS BIGINT) FROM usage_hourly") == 2130)
            #expect(try await stores.integer("SELECT COUNT(*) FROM chat_history") == 1065)
            #expect(
                try await stores.integer(
                    "SELECT COUNT(*) FROM usage_log WHERE ttfb_ms IS NULL OR model IS NULL OR key_id IS NOT NULL")
                    == 0)
        }
    }

    @Test(
        "chat history: one row per new chat request, its texts only when sent, none for a duplicate",
        arguments: StoreEngine.tested)
    func chatHistory(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let metadata = Self.row("c1", model: "gpt", prompt: 3, completion: 4, chat: true)
            var full = Self.row("c2", model: "gpt", prompt: 5, completion: 6, chat: true)
            full.tokensEstimated = true
            full.chatRequest = "[{\"role\":\"user\",\"content\":\"it's\"}]"
            full.chatResponse = "hello"
            let off = Self.row("c3", model: "gpt")
            _ = try await stores.usage.commit([metadata, full, off, full], refused: [])
            _ = try await stores.usage.commit([metadata], refused: [])
            #expect(try await stores.integer("SELECT COUNT(*) FROM chat_history") == 2)
            #expect(
                try await stores.integer(
                    """
                    SELECT COUNT(*) FROM chat_history WHERE request_id = 'c1' AND request IS NULL AND response IS NULL
                        AND prompt_tokens = 3 AND completion_tokens = 4 AND total_tokens = 7 AND status = 200
                        AND model = 'gpt' AND latency_ms = 10 AND ttfb_ms = 4 AND ts = \(Self.now)
                        AND path = '/v1/chat/completions' AND timestamp IS NOT NULL
                    """) == 1)
            #expect(
                try await stores.integer(
                    """
                    SELECT COUNT(*) FROM chat_history WHERE request_id = 'c2'
                        AND request = '[{"role":"user","content":"it''s"}]' AND response = 'hello'
                        AND tokens_estimated = TRUE
                    """) == 1)
            #expect(
                try await stores.integer("SELECT COUNT(*) FROM usage_log WHERE tokens_estimated = TRUE") == 1)
        }
    }

    @Test(
        "refused counts keep the largest total per minute, reason and source: resent or stale ones add nothing",
        arguments: StoreEngine.tested)
    func refused(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let minute = RefusedCount.minute(of: Self.now)
            func count(_ source: String, _ reason: RefusalReason, _ value: Int64, at: Int64 = minute) -> RefusedCount {
                RefusedCount(source: source, minute: at, reason: reason, count: value)
            }
            let first = try await stores.usage.commit(
                [],
                refused: [count("w0", .invalidToken, 3), count("w1", .invalidToken, 2), count("w0", .missingToken, 1)])
            #expect(first.refused == [.invalidToken: 5, .missingToken: 1])
            let second = try await stores.usage.commit(
                [],
                refused: [count("w0", .invalidToken, 3), count("w0", .invalidToken, 7), count("w1", .invalidToken, 1)])
            #expect(second.refused == [.invalidToken: 4], "3 again and a stale 1 add nothing; 7 adds 4")
            #expect(try await stores.integer("SELECT CAST(SUM(requests) AS BIGINT) FROM refused_requests") == 10)
            #expect(try await stores.integer("SELECT COUNT(*) FROM refused_requests") == 3)
        }
    }

    @Test("a token's quota reservation ends in the transaction that counts its request", arguments: StoreEngine.tested)
    func reservations(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (_, token) = try await Self.keyAndToken(stores)
            try await stores.execute(
                """
                INSERT INTO token_quota_reservations (request_id, token_id, tokens, created_at)
                VALUES ('q1', \(token), 100, 1), ('q2', \(token), 50, 1)
                """)
            _ = try await stores.usage.commit([Self.row("q1", token: token), Self.row("q3")], refused: [])
            #expect(
                try await stores.integer("SELECT CAST(SUM(tokens) AS BIGINT) FROM token_quota_reservations") == 50)
            #expect(
                try await stores.integer("SELECT COUNT(*) FROM token_quota_reservations WHERE request_id = 'q2'") == 1)
        }
    }

    @Test(
        "cached, reasoning and audio token counts are stored per row and summed per hour; unreported stays NULL",
        arguments: StoreEngine.tested)
    func tokenDetails(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            var detailed = Self.row("t1", prompt: 100, completion: 40)
            detailed.cachedTokens = 60
            detailed.reasoningTokens = 30
            detailed.audioInputTokens = 5
            detailed.audioOutputTokens = 7
            var cachedOnly = Self.row("t2", prompt: 50, completion: 10)
            cachedOnly.cachedTokens = 0
            let plain = Self.row("t3", prompt: 20, completion: 2)
            _ = try await stores.usage.commit([detailed, cachedOnly, plain], refused: [])
            let logged = try await Self.sums(
                stores, "FROM usage_log",
                of: ["cached_tokens", "reasoning_tokens", "audio_input_tokens", "audio_output_tokens"])
            #expect(logged == [60, 30, 5, 7])
            #expect(try await stores.integer("SELECT COUNT(*) FROM usage_log WHERE cached_tokens IS NULL") == 1)
            let hourly = try await Self.sums(
                stores, "FROM usage_hourly",
                of: [
                    "cached_tokens", "cache_prompt_tokens", "reasoning_tokens", "audio_input_tokens",
                    "audio_output_tokens",
                ])
            #expect(hourly == [60, 150, 30, 5, 7], "the hit rate's denominator counts rows that reported a cache")
        }
    }

    @Test(
        "an object's record commits with the batch of the request that created it, and its deletion with another's",
        arguments: StoreEngine.tested)
    func objects(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let object = StoredObject(
                id: "file-abc", kind: "file", keyID: 3, tokenID: 4, createdAt: Self.now, expiresAt: Self.now + 1000)
            let created = try await stores.usage.commit([Self.row("o1")], refused: [], objects: [.created(object)])
            #expect(created.new.count == 1)
            #expect(try await stores.objects.object(id: "file-abc") == object)
            _ = try await stores.usage.commit([Self.row("o2")], refused: [], objects: [.deleted(id: "file-abc")])
            #expect(try await stores.objects.object(id: "file-abc") == nil)
            #expect(try await stores.integer("SELECT COUNT(*) FROM usage_log") == 2)
        }
    }

    @Test(
        "collectors committing at once on the same keys, tokens and hours all land, and the aggregates add up",
        arguments: StoreEngine.tested)
    func concurrentCommits(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (key, token) = try await Self.keyAndToken(stores)
            let usage = stores.usage
            // Each batch names the aggregate rows in another order, as two hosts' batches would.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for batch in 0..<4 {
                    group.addTask {
                        var rows: [UsageRow] = []
                        for index in 0..<50 {
                            let at = Self.now + Int64(index % 3) * 3_600_000
                            rows.append(
                                Self.row(
                                    "b\(batch)-\(index)", key: index % 2 == 0 ? key : nil,
                                    token: index % 3 == 0 ? token : nil, model: "m\(index % 5)", at: at))
                        }
                        if batch % 2 == 1 { rows.reverse() }
                        _ = try await usage.commit(rows, refused: [])
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await stores.integer("SELECT COUNT(*) FROM usage_log") == 200)
            #expect(try await stores.integer("SELECT CAST(SUM(requests) AS BIGINT) FROM usage_hourly") == 200)
            #expect(try await stores.integer("SELECT usage_count FROM keys WHERE id = \(key)") == 100)
            #expect(try await stores.integer("SELECT request_count FROM client_tokens WHERE id = \(token)") == 68)
            #expect(try await stores.integer("SELECT CAST(SUM(usage_count) AS BIGINT) FROM usage_stats") == 100)
        }
    }

    @Test(
        "the batch writer commits through either engine, a row sent twice once", arguments: StoreEngine.tested)
    func writer(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let batches = UsageBatchWriter(store: stores.usage, batchSize: 16, logger: Logger(label: "test"))
            for index in 0..<40 { batches.enqueue(Self.row("w\(index)")) }
            batches.enqueue(Self.row("w3"))
            let refused = RefusedCount(source: "w0", minute: Self.now, reason: .missingToken, count: 2)
            batches.enqueue(UsageWire.Record.refused(refused))
            #expect(batches.pending == 42)
            await batches.flush()
            #expect(batches.pending == 0)
            let stored = try await stores.integer("SELECT COUNT(*) FROM usage_log")
            #expect(stored == 40)
            #expect(try await stores.integer("SELECT requests FROM refused_requests") == 2)
        }
    }

    @Test(
        "retention deletes the log, chat history and refused counts past the cutoff, and nothing else",
        arguments: StoreEngine.tested)
    func retention(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let old: Int64 = 1_000_000_000_000
            let cutoff: Int64 = 1_500_000_000_000
            var rows = (0..<12).map { Self.row("old\($0)", at: old, chat: true) }
            rows.append(Self.row("edge", at: cutoff, chat: true))
            rows.append(Self.row("new", chat: true))
            _ = try await stores.usage.commit(
                rows,
                refused: [
                    RefusedCount(source: "w0", minute: old, reason: .unknownPath, count: 2),
                    RefusedCount(source: "w0", minute: Self.now, reason: .unknownPath, count: 3),
                ])
            let removed = try await stores.usage.prune(olderThan: cutoff, chunk: 5)
            #expect(removed == 12 + 12 + 1)
            #expect(try await stores.integer("SELECT COUNT(*) FROM usage_log") == 2)
            #expect(try await stores.integer("SELECT COUNT(*) FROM usage_log WHERE request_id IN ('edge', 'new')") == 2)
            #expect(try await stores.integer("SELECT COUNT(*) FROM chat_history") == 2)
            #expect(try await stores.integer("SELECT minute FROM refused_requests") == Self.now)
            #expect(try await stores.integer("SELECT CAST(SUM(requests) AS BIGINT) FROM usage_hourly") == 14)
            #expect(try await stores.usage.prune(olderThan: cutoff, chunk: 5) == 0)
        }
    }
}
