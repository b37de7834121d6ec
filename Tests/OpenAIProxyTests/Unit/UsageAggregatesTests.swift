import Testing

@testable import Shared
@testable import StatsCollector

/// The collector's in-memory fold of a batch and the PostgreSQL statements it is written with, without a database.
@Suite("Usage aggregates")
struct UsageAggregatesTests {
    private static func row(
        _ id: String, key: Int64?, token: Int64?, model: String?, status: Int, at: Int64
    ) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: at, worker: 0, keyID: key, tokenID: token, model: model, method: "POST",
            path: "/v1/chat/completions", status: status, latencyMs: 10, ttfbMs: nil, streamed: false,
            promptTokens: 2, completionTokens: 3, totalTokens: 5, error: nil, keepsChatHistory: key == 1)
    }

    @Test("rows fold per hour × key × model × token, per key × model, per key and per token")
    func fold() {
        let hour: Int64 = 1_699_999_200_000
        let aggregates = UsageAggregates([
            Self.row("a", key: 1, token: 7, model: "gpt", status: 200, at: hour + 1),
            Self.row("b", key: 1, token: 7, model: "gpt", status: 500, at: hour + 3_599_999),
            Self.row("c", key: 1, token: 7, model: "gpt", status: 200, at: hour + 3_600_000),
            Self.row("d", key: 2, token: nil, model: nil, status: 200, at: hour),
            Self.row("e", key: nil, token: nil, model: "gpt", status: 401, at: hour),
        ])
        let first = UsageAggregates.HourlyKey(hour: hour / 1000, keyID: 1, model: "gpt", tokenID: 7)
        #expect(aggregates.hourly.count == 4)
        #expect(aggregates.hourly[first]?.requests == 2)
        #expect(aggregates.hourly[first]?.failures == 1)
        #expect(aggregates.hourly[first]?.promptTokens == 4)
        #expect(aggregates.hourly[first]?.lastUsed == hour + 3_599_999)
        #expect(aggregates.hourly[.init(hour: hour / 1000, keyID: 0, model: "gpt", tokenID: 0)]?.requests == 1)
        #expect(aggregates.hourly[.init(hour: hour / 1000, keyID: 2, model: "", tokenID: 0)]?.requests == 1)
        #expect(
            aggregates.perKeyModel.mapValues(\.requests) == [
                .init(hour: 0, keyID: 1, model: "gpt", tokenID: 0): 3,
                .init(hour: 0, keyID: 2, model: "", tokenID: 0): 1,
            ])
        #expect(aggregates.perKey.mapValues(\.requests) == [1: 3, 2: 1])
        #expect(aggregates.perKey[1]?.successes == 2)
        #expect(aggregates.perToken.mapValues(\.requests) == [7: 3])
        #expect(aggregates.chatHistory.map(\.requestID) == ["a", "b", "c"])
    }

    @Test("PostgreSQL multi-row inserts: one numbered row of parameters per record, cut at the row limit")
    func multiRowStatements() {
        let insert = PostgresMultiRowInsert<(Int64, String?)>(
            "INSERT INTO t", columns: [.init("a") { $0.0 }, .init("b") { $0.1 }], tail: "ON CONFLICT DO NOTHING",
            maximumRows: 2)
        let queries = insert.queries([(1, "x"), (2, nil), (3, "z"), (4, nil), (5, "v")])
        #expect(
            queries.map(\.sql) == [
                "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4) ON CONFLICT DO NOTHING",
                "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4) ON CONFLICT DO NOTHING",
                "INSERT INTO t (a, b) VALUES ($1,$2) ON CONFLICT DO NOTHING",
            ])
        #expect(queries.map(\.binds.count) == [4, 4, 2])
        #expect(insert.queries([]).isEmpty)
        // A row limit past PostgreSQL's 65,535 parameters per statement is cut to what fits.
        let wide = PostgresMultiRowInsert<Int64>(
            "INSERT INTO t", columns: (0..<20).map { column in .init("c\(column)") { $0 } }, maximumRows: 100_000)
        #expect(wide.maximumRows == 3276)
        #expect(PostgresUsageStore.usageLog.maximumRows == 1000)
    }
}
