import GRDB
import Shared

/// The admin API's reads of statistics, the request log and metrics on SQLite (`AdminReading`).
public struct StatsReader: AdminReading {
    /// The shared database.
    public let database: ProxyDatabase

    /// The reader over `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    /// The SELECT list that sums `usage_hourly` into `UsageTotals`' columns.
    static let totalsColumns = """
        COALESCE(SUM(requests), 0) AS requests, COALESCE(SUM(successes), 0) AS successes,
        COALESCE(SUM(failures), 0) AS failures, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
        COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
        COALESCE(SUM(latency_ms_sum), 0) AS latency_ms_sum, COALESCE(SUM(ttfb_ms_sum), 0) AS ttfb_ms_sum,
        \(detailsColumns)
        """

    /// The SELECT list that sums `usage_hourly` into `TokenDetails`' columns.
    static let detailsColumns = """
        COALESCE(SUM(cached_tokens), 0) AS cached_tokens,
        COALESCE(SUM(cache_prompt_tokens), 0) AS cache_prompt_tokens,
        COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens,
        COALESCE(SUM(audio_input_tokens), 0) AS audio_input_tokens,
        COALESCE(SUM(audio_output_tokens), 0) AS audio_output_tokens
        """

    public func overview(today: Int64, hour: Int64, latencySamples: Int) async throws -> StatsOverviewFigures {
        try await database.pool.read { db in
            func counts(_ sql: String) throws -> [String: Int] {
                Dictionary(
                    try Row.fetchAll(db, sql: sql).map { row -> (String, Int) in (row["status"], row["n"]) },
                    uniquingKeysWith: +)
            }
            return StatsOverviewFigures(
                keys: try counts("SELECT status, COUNT(*) AS n FROM keys GROUP BY status"),
                tokens: try counts(
                    "SELECT status, COUNT(*) AS n FROM client_tokens WHERE internal = 0 GROUP BY status"),
                models: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM models") ?? 0,
                enabledModels: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM models WHERE enabled = 1") ?? 0,
                allTime: try Self.totals(db, since: nil), today: try Self.totals(db, since: today),
                lastHour: try Self.totals(db, since: hour),
                latencies: try Double.fetchAll(
                    db, sql: "SELECT latency_ms FROM usage_log WHERE ts >= ? ORDER BY ts DESC, id DESC LIMIT ?",
                    arguments: [today * 1000, latencySamples]))
        }
    }

    public func totals(since hour: Int64?) async throws -> UsageTotals {
        try await database.pool.read { db in try Self.totals(db, since: hour) }
    }

    private static func totals(_ db: Database, since hour: Int64?) throws -> UsageTotals {
        // No condition at all for all time, so that a bounded span can use the primary key's `hour` prefix.
        guard let hour else {
            return try UsageTotals(row: Row.fetchOne(db, sql: "SELECT \(totalsColumns) FROM usage_hourly")!)
        }
        return try UsageTotals(
            row: Row.fetchOne(
                db, sql: "SELECT \(totalsColumns) FROM usage_hourly WHERE hour >= ?", arguments: [hour])!)
    }

    public func statusCounts(since: Int64?) async throws -> [UsageStatusCount] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT status, COUNT(*) AS n FROM usage_log WHERE ts >= ? GROUP BY status ORDER BY status",
                arguments: [(since ?? 0) * 1000]
            ).map { UsageStatusCount(status: $0["status"], requests: $0["n"]) }
        }
    }

    public func hourlyTotals(from first: Int64) async throws -> [Int64: UsageTotals] {
        try await database.pool.read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(
                    db, sql: "SELECT hour, \(Self.totalsColumns) FROM usage_hourly WHERE hour >= ? GROUP BY hour",
                    arguments: [first]
                ).map { row -> (Int64, UsageTotals) in (row["hour"], try UsageTotals(row: row)) })
        }
    }

    public func modelTotals(model: String?) async throws -> [ModelTotals] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT model, \(Self.totalsColumns) FROM usage_hourly
                    WHERE model <> '' AND (? IS NULL OR model = ?) GROUP BY model ORDER BY model
                    """, arguments: [model, model]
            ).map { row in ModelTotals(model: row["model"], totals: try UsageTotals(row: row)) }
        }
    }

    public func tokenTotals(tokenID: Int64?) async throws -> [TokenTotals] {
        try await database.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT token_id, (SELECT name FROM client_tokens WHERE id = token_id) AS name, \(Self.totalsColumns)
                    FROM usage_hourly WHERE token_id > 0 AND (? IS NULL OR token_id = ?)
                    GROUP BY token_id ORDER BY token_id
                    """, arguments: [tokenID, tokenID]
            ).map { row in TokenTotals(tokenID: row["token_id"], name: row["name"], totals: try UsageTotals(row: row)) }
        }
    }

    public func tokenDetailsPerKey(keyID: Int64?) async throws -> [Int64: TokenDetails] {
        try await database.pool.read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(
                    db,
                    sql: """
                        SELECT key_id, \(Self.detailsColumns) FROM usage_hourly
                        WHERE key_id > 0 AND (? IS NULL OR key_id = ?) GROUP BY key_id
                        """, arguments: [keyID, keyID]
                ).map { row -> (Int64, TokenDetails) in (row["key_id"], TokenDetails(row: row)) })
        }
    }

    public func refusedCounts(since: Int64?) async throws -> [String: Int64] {
        try await database.pool.read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(
                    db,
                    sql: "SELECT reason, SUM(requests) AS n FROM refused_requests WHERE minute >= ? GROUP BY reason",
                    arguments: [(since ?? 0) * 1000]
                ).map { row -> (String, Int64) in (row["reason"], row["n"]) })
        }
    }

    public func metricsFigures() async throws -> MetricsFigures {
        try await database.pool.read { db in
            MetricsFigures(
                keys: try Row.fetchAll(db, sql: "SELECT id, status, models FROM keys ORDER BY id").map {
                    (id: $0["id"], status: $0["status"], models: $0["models"])
                },
                modelNames: try String.fetchAll(db, sql: "SELECT model_name FROM models"))
        }
    }
}

extension UsageTotals {
    /// The totals in a row selected with `StatsReader.totalsColumns`.
    init(row: Row) throws {
        self.init(
            requests: row["requests"], successes: row["successes"], failures: row["failures"],
            promptTokens: row["prompt_tokens"], completionTokens: row["completion_tokens"],
            latencySum: row["latency_ms_sum"], ttfbSum: row["ttfb_ms_sum"], details: TokenDetails(row: row))
    }
}

extension TokenDetails {
    /// The sums in a row selected with `StatsReader.detailsColumns`.
    init(row: Row) {
        self.init(
            cachedTokens: row["cached_tokens"], cachePromptTokens: row["cache_prompt_tokens"],
            reasoningTokens: row["reasoning_tokens"], audioInputTokens: row["audio_input_tokens"],
            audioOutputTokens: row["audio_output_tokens"])
    }
}
