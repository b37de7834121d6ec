import Foundation
import Testing

@testable import AdminServer
@testable import Shared
@testable import StatsCollector

/// `AdminReading` on every engine: the same usage rows, written through each engine's collector store, give the
/// same request log, statistics and metrics figures, so SQLite and PostgreSQL cannot drift.
@Suite("Stats reading")
struct StatsReadingTests {
    /// 08:30 UTC, half an hour into an hour.
    static let now: Int64 = 1_800_001_800_000
    /// The start of `now`'s day, Unix seconds.
    static let today: Int64 = 1_799_971_200
    /// The start of `now`'s hour, Unix seconds.
    static let hour: Int64 = 1_800_000_000

    /// What the fixture stored: ids the rows name.
    struct Fixture {
        let keyA: Int64
        let keyB: Int64
        let tokenOne: Int64
        let tokenTwo: Int64
    }

    private static func row(
        _ id: String, at timestamp: Int64, key: Int64?, token: Int64?, model: String?, status: Int = 200,
        latency: Double, prompt: Int? = nil, completion: Int? = nil, error: String? = nil
    ) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: timestamp, worker: 1, keyID: key, tokenID: token, model: model, method: "POST",
            path: "/v1/chat/completions", status: status, latencyMs: latency, ttfbMs: 4, streamed: false,
            promptTokens: prompt, completionTokens: completion, totalTokens: prompt.map { $0 + (completion ?? 0) },
            error: error)
    }

    /// Two keys (b disabled, a listing its models), three tokens (two revoked: one of them, the console's,
    /// internal), two models (one disabled), six requests over 40 days and refused counts, written through the
    /// engine's stores.
    private static func seed(_ stores: EngineStores) async throws -> Fixture {
        guard
            case .added(let a) = try await stores.keys.add(name: "a", value: "sk-reading-aaaa-000001", status: .active),
            case .added(let b) = try await stores.keys.add(name: "b", value: "sk-reading-bbbb-000002", status: .active)
        else { throw ReadingTestError.notAdded }
        let keyA = try #require(a.id)
        let keyB = try #require(b.id)
        _ = try await stores.keys.setStatus(id: keyB, .disabled, reason: "operator")
        try await stores.execute(#"UPDATE keys SET models = '["gpt-listed","gpt-a"]' WHERE name = 'a'"#)
        try await stores.execute("UPDATE keys SET models = 'not json' WHERE name = 'b'")
        let one = try await stores.tokens.create(name: "t1", limits: ClientTokenLimits(), audit: nil).token
        let two = try await stores.tokens.create(name: "t2", limits: ClientTokenLimits(), audit: nil).token
        let tokenTwo = try #require(two.id)
        _ = try await stores.tokens.revoke(id: tokenTwo, audit: nil)
        _ = try await stores.tokens.create(name: "console", limits: ClientTokenLimits(), audit: nil)
        try await stores.execute("UPDATE client_tokens SET internal = TRUE WHERE name = 'console'")
        try await stores.models.create(ModelEntry(name: "gpt-a"), audit: nil)
        try await stores.models.create(ModelEntry(name: "gpt-x", enabled: false), audit: nil)

        let fixture = Fixture(keyA: keyA, keyB: keyB, tokenOne: try #require(one.id), tokenTwo: tokenTwo)
        var r1 = row(
            "r1", at: now - 60_000, key: keyA, token: fixture.tokenOne, model: "gpt-b", latency: 10, prompt: 100,
            completion: 20)
        r1.cachedTokens = 40
        r1.reasoningTokens = 5
        let r2 = row(
            "r2", at: now - 120_000, key: keyB, token: tokenTwo, model: "gpt-a", status: 429, latency: 30,
            error: "rate_limited")
        var r3 = row(
            "r3", at: (hour - 7200 + 300) * 1000, key: keyA, token: fixture.tokenOne, model: "gpt-a", latency: 20,
            prompt: 10, completion: 5)
        r3.streamed = true
        r3.audioInputTokens = 3
        r3.audioOutputTokens = 7
        let r4 = row(
            "r4", at: now - 3 * 86_400_000, key: keyA, token: nil, model: "gpt-a", status: 500, latency: 50,
            prompt: 1, completion: 0)
        let r5 = row("r5", at: now - 40 * 86_400_000, key: nil, token: 999, model: nil, status: 401, latency: 1)
        // The same instant as r1, stored after it; a model name that sorts first only in byte order.
        var r6 = row(
            "r6", at: now - 60_000, key: keyB, token: fixture.tokenOne, model: "Gpt-C", latency: 15, prompt: 2,
            completion: 3)
        r6.cachedTokens = 0
        _ = try await stores.usage.commit([r4, r5], refused: [])
        _ = try await stores.usage.commit(
            [r3, r2, r1, r6],
            refused: [
                RefusedCount(
                    source: "w0", minute: RefusedCount.minute(of: now - 60_000), reason: .invalidToken, count: 5),
                RefusedCount(
                    source: "w1", minute: RefusedCount.minute(of: now - 60_000), reason: .invalidToken, count: 2),
                RefusedCount(
                    source: "w0", minute: RefusedCount.minute(of: now - 3 * 86_400_000), reason: .missingToken, count: 4
                ),
            ])
        return fixture
    }

    private enum ReadingTestError: Error { case notAdded }

    /// Totals with the latency and time-to-first-byte sums of `requests` rows at 4 ms each.
    private static func totals(
        _ requests: Int64, failures: Int64, prompt: Int64, completion: Int64, latency: Double,
        details: TokenDetails = .none
    ) -> UsageTotals {
        UsageTotals(
            requests: requests, successes: requests - failures, failures: failures, promptTokens: prompt,
            completionTokens: completion, latencySum: latency, ttfbSum: Double(requests) * 4, details: details)
    }

    @Test(
        "the overview: pool counts without internal tokens, totals of all time, today and this hour, today's latencies newest first",
        arguments: StoreEngine.tested)
    func overview(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            _ = try await Self.seed(stores)
            let figures = try await stores.reading.overview(today: Self.today, hour: Self.hour, latencySamples: 10)
            #expect(figures.keys == ["active": 1, "disabled": 1])
            #expect(figures.tokens == ["active": 1, "revoked": 1])
            #expect(figures.models == 2 && figures.enabledModels == 1)
            let details = TokenDetails(
                cachedTokens: 40, cachePromptTokens: 102, reasoningTokens: 5, audioInputTokens: 3, audioOutputTokens: 7)
            #expect(
                figures.allTime
                    == Self.totals(6, failures: 3, prompt: 113, completion: 28, latency: 126, details: details))
            #expect(
                figures.today
                    == Self.totals(
                        4, failures: 1, prompt: 112, completion: 28, latency: 75,
                        details: TokenDetails(
                            cachedTokens: 40, cachePromptTokens: 102, reasoningTokens: 5, audioInputTokens: 3,
                            audioOutputTokens: 7)))
            #expect(figures.lastHour.requests == 3 && figures.lastHour.failures == 1)
            #expect(figures.latencies == [15, 10, 30, 20], "today's rows only, newest first, the later-stored first")
            let sampled = try await stores.reading.overview(today: Self.today, hour: Self.hour, latencySamples: 2)
            #expect(sampled.latencies == [15, 10])
        }
    }

    @Test("period totals, statuses and refused counts cover exactly their span", arguments: StoreEngine.tested)
    func periods(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            _ = try await Self.seed(stores)
            let reading = stores.reading
            #expect(try await reading.totals(since: nil).requests == 6)
            #expect(try await reading.totals(since: Self.today).requests == 4)
            #expect(try await reading.totals(since: Self.today - 6 * 86_400).requests == 5)
            #expect(try await reading.totals(since: Self.hour + 3600) == .zero)
            #expect(
                try await reading.statusCounts(since: nil) == [
                    UsageStatusCount(status: 200, requests: 3), UsageStatusCount(status: 401, requests: 1),
                    UsageStatusCount(status: 429, requests: 1), UsageStatusCount(status: 500, requests: 1),
                ])
            #expect(
                try await reading.statusCounts(since: Self.today) == [
                    UsageStatusCount(status: 200, requests: 3), UsageStatusCount(status: 429, requests: 1),
                ])
            #expect(try await reading.refusedCounts(since: nil) == ["invalid_token": 7, "missing_token": 4])
            #expect(try await reading.refusedCounts(since: Self.today) == ["invalid_token": 7])
        }
    }

    @Test(
        "hourly, per-model (byte order), per-token (with names) and per-key detail totals",
        arguments: StoreEngine.tested)
    func breakdowns(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            if engine == .postgresql {
                // A database whose locale sorts letters before case (as en_US does), unlike the test cluster's C:
                // model names must still come in byte order.
                try await stores.execute(#"ALTER TABLE usage_hourly ALTER COLUMN model TYPE TEXT COLLATE "und-x-icu""#)
            }
            let fixture = try await Self.seed(stores)
            let reading = stores.reading
            let hourly = try await reading.hourlyTotals(from: Self.hour - 7200)
            #expect(hourly.keys.sorted() == [Self.hour - 7200, Self.hour])
            #expect(
                hourly[Self.hour - 7200]
                    == Self.totals(
                        1, failures: 0, prompt: 10, completion: 5, latency: 20,
                        details: TokenDetails(audioInputTokens: 3, audioOutputTokens: 7)))
            #expect(
                hourly[Self.hour]
                    == Self.totals(
                        3, failures: 1, prompt: 102, completion: 23, latency: 55,
                        details: TokenDetails(cachedTokens: 40, cachePromptTokens: 102, reasoningTokens: 5)))

            let models = try await reading.modelTotals(model: nil)
            #expect(models.map(\.model) == ["Gpt-C", "gpt-a", "gpt-b"], "no empty model; byte order")
            #expect(models.map(\.totals.requests) == [1, 3, 1])
            #expect(
                models[1].totals
                    == Self.totals(
                        3, failures: 2, prompt: 11, completion: 5, latency: 100,
                        details: TokenDetails(
                            audioInputTokens: 3, audioOutputTokens: 7)))
            #expect(try await reading.modelTotals(model: "gpt-b").map(\.model) == ["gpt-b"])
            #expect(try await reading.modelTotals(model: "nope").isEmpty)

            let tokens = try await reading.tokenTotals(tokenID: nil)
            #expect(tokens.map(\.tokenID) == [fixture.tokenOne, fixture.tokenTwo, 999])
            #expect(tokens.map(\.name) == ["t1", "t2", nil], "a token that is gone has no name")
            #expect(tokens.map(\.totals.requests) == [3, 1, 1])
            #expect(try await reading.tokenTotals(tokenID: fixture.tokenTwo).map(\.totals.failures) == [1])

            let details = try await reading.tokenDetailsPerKey(keyID: nil)
            #expect(
                details == [
                    fixture.keyA: TokenDetails(
                        cachedTokens: 40, cachePromptTokens: 100, reasoningTokens: 5, audioInputTokens: 3,
                        audioOutputTokens: 7),
                    fixture.keyB: TokenDetails(cachePromptTokens: 2),
                ])
            #expect(
                try await reading.tokenDetailsPerKey(keyID: fixture.keyB) == [
                    fixture.keyB: TokenDetails(cachePromptTokens: 2)
                ])
            #expect(try await reading.tokenDetailsPerKey(keyID: 12_345).isEmpty)
        }
    }

    @Test(
        "the request log pages newest first (ties by storage order), filters by key, token, model, status and span",
        arguments: StoreEngine.tested)
    func usageLog(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let fixture = try await Self.seed(stores)
            let reading = stores.reading
            func ids(_ filter: UsageLogFilter, limit: Int = 50, offset: Int = 0) async throws -> ([String], Int) {
                let page = try await reading.usagePage(filter, limit: limit, offset: offset)
                return (page.entries.map(\.requestID), page.total)
            }
            #expect(try await ids(UsageLogFilter()) == (["r6", "r1", "r2", "r3", "r4", "r5"], 6))
            #expect(try await ids(UsageLogFilter(), limit: 2, offset: 1) == (["r1", "r2"], 6))
            #expect(try await ids(UsageLogFilter(), limit: 2, offset: 6) == ([], 6))
            #expect(try await ids(UsageLogFilter(keyID: fixture.keyA)) == (["r1", "r3", "r4"], 3))
            #expect(try await ids(UsageLogFilter(tokenID: fixture.tokenOne, model: "gpt-a")) == (["r3"], 1))
            #expect(try await ids(UsageLogFilter(status: 429)) == (["r2"], 1))
            #expect(try await ids(UsageLogFilter(from: Self.today * 1000, to: Self.now - 60_000)) == (["r2", "r3"], 2))
            #expect(try await ids(UsageLogFilter(keyID: fixture.keyB, status: 500)) == ([], 0))

            let entries = try await reading.usagePage(UsageLogFilter(), limit: 50, offset: 0).entries
            let first = try #require(entries.first { $0.requestID == "r1" })
            #expect(
                first
                    == UsageLogEntry(
                        id: first.id,
                        row: UsageRow(
                            requestID: "r1", timestamp: Self.now - 60_000, worker: 1, keyID: fixture.keyA,
                            tokenID: fixture.tokenOne, model: "gpt-b", method: "POST", path: "/v1/chat/completions",
                            status: 200, latencyMs: 10, ttfbMs: 4, streamed: false, promptTokens: 100,
                            completionTokens: 20, totalTokens: 120, error: nil, cachedTokens: 40, reasoningTokens: 5)))
            let failed = try #require(entries.first { $0.requestID == "r2" })
            #expect(failed.promptTokens == nil && failed.totalTokens == nil && failed.error == "rate_limited")
            let streamed = try #require(entries.first { $0.requestID == "r3" })
            #expect(streamed.streamed && streamed.audioOutputTokens == 7 && streamed.cachedTokens == nil)
            let keyless = try #require(entries.first { $0.requestID == "r5" })
            #expect(keyless.keyID == nil && keyless.model == nil && keyless.tokenID == 999)
        }
    }

    @Test(
        "metrics figures: every key's state, and the models of the table and of the keys' readable lists",
        arguments: StoreEngine.tested)
    func metrics(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let fixture = try await Self.seed(stores)
            let figures = try await stores.reading.metricsFigures()
            #expect(figures.keyStatuses == [fixture.keyA: "active", fixture.keyB: "disabled"])
            #expect(figures.models == ["gpt-a", "gpt-x", "gpt-listed"])
        }
    }

    @Test("an empty database reads as zeros and empty lists", arguments: StoreEngine.tested)
    func empty(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let reading = stores.reading
            let figures = try await reading.overview(today: Self.today, hour: Self.hour, latencySamples: 10)
            #expect(figures.allTime == .zero && figures.today == .zero && figures.lastHour == .zero)
            #expect(figures.keys.isEmpty && figures.latencies.isEmpty && figures.models == 0)
            #expect(try await reading.totals(since: nil) == .zero)
            #expect(try await reading.statusCounts(since: nil).isEmpty)
            #expect(try await reading.hourlyTotals(from: 0).isEmpty)
            #expect(try await reading.modelTotals(model: nil).isEmpty)
            #expect(try await reading.tokenTotals(tokenID: nil).isEmpty)
            #expect(try await reading.tokenDetailsPerKey(keyID: nil).isEmpty)
            #expect(try await reading.refusedCounts(since: nil).isEmpty)
            let page = try await reading.usagePage(UsageLogFilter(), limit: 10, offset: 0)
            #expect(page.entries.isEmpty && page.total == 0)
            #expect(try await reading.metricsFigures() == MetricsFigures(keys: [], modelNames: []))
        }
    }
}
