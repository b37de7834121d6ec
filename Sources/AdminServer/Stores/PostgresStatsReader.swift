import Logging
import PostgresNIO
import Shared

/// The admin API's reads of statistics, the request log and metrics on PostgreSQL; answers as `StatsReader`
/// does on SQLite. Times are stored the same way on both (Unix ms in `ts` and `minute`, Unix seconds in
/// `hour`), so the spans are the same integer comparisons; sums are cast back to `bigint` (PostgreSQL sums
/// `bigint` into `numeric`), and names sort in byte order (`COLLATE "C"`), as SQLite's BINARY collation does.
public struct PostgresStatsReader: AdminReading {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// The reader over `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    /// The SELECT list that sums `usage_hourly` into `UsageTotals`' columns.
    static let totalsColumns = """
        COALESCE(SUM(requests), 0)::bigint AS requests, COALESCE(SUM(successes), 0)::bigint AS successes,
        COALESCE(SUM(failures), 0)::bigint AS failures, COALESCE(SUM(prompt_tokens), 0)::bigint AS prompt_tokens,
        COALESCE(SUM(completion_tokens), 0)::bigint AS completion_tokens,
        COALESCE(SUM(latency_ms_sum), 0)::double precision AS latency_ms_sum,
        COALESCE(SUM(ttfb_ms_sum), 0)::double precision AS ttfb_ms_sum,
        \(detailsColumns)
        """

    /// The SELECT list that sums `usage_hourly` into `TokenDetails`' columns.
    static let detailsColumns = """
        COALESCE(SUM(cached_tokens), 0)::bigint AS cached_tokens,
        COALESCE(SUM(cache_prompt_tokens), 0)::bigint AS cache_prompt_tokens,
        COALESCE(SUM(reasoning_tokens), 0)::bigint AS reasoning_tokens,
        COALESCE(SUM(audio_input_tokens), 0)::bigint AS audio_input_tokens,
        COALESCE(SUM(audio_output_tokens), 0)::bigint AS audio_output_tokens
        """

    public func overview(today: Int64, hour: Int64, latencySamples: Int) async throws -> StatsOverviewFigures {
        try await snapshot { connection, logger in
            func counts(_ query: PostgresQuery) async throws -> [String: Int] {
                var counts: [String: Int] = [:]
                for try await (status, count) in try await connection.query(query, logger: logger).decode(
                    (String, Int64).self)
                {
                    counts[status, default: 0] += Int(count)
                }
                return counts
            }
            let keys = try await counts("SELECT status, COUNT(*) FROM keys GROUP BY status")
            let tokens = try await counts(
                "SELECT status, COUNT(*) FROM client_tokens WHERE NOT internal GROUP BY status")
            var models = (total: Int64(0), enabled: Int64(0))
            for try await counted in try await connection.query(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE enabled) FROM models", logger: logger
            ).decode((Int64, Int64).self) { models = counted }
            var latencies: [Double] = []
            for try await latency in try await connection.query(
                """
                SELECT latency_ms FROM usage_log WHERE ts >= \(today * 1000) ORDER BY ts DESC, id DESC
                LIMIT \(Int64(latencySamples))
                """, logger: logger
            ).decode(Double.self) { latencies.append(latency) }
            return StatsOverviewFigures(
                keys: keys, tokens: tokens, models: Int(models.total), enabledModels: Int(models.enabled),
                allTime: try await Self.totals(connection, since: nil, logger: logger),
                today: try await Self.totals(connection, since: today, logger: logger),
                lastHour: try await Self.totals(connection, since: hour, logger: logger), latencies: latencies)
        }
    }

    public func totals(since hour: Int64?) async throws -> UsageTotals {
        try await database.connection { connection in
            try await Self.totals(connection, since: hour, logger: database.logger)
        }
    }

    private static func totals(
        _ connection: PostgresConnection, since hour: Int64?, logger: Logger
    ) async throws -> UsageTotals {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: totalsColumns) FROM usage_hourly WHERE \(hour)::bigint IS NULL OR hour >= \(hour)
            """, logger: logger)
        var totals = UsageTotals.zero
        for try await row in rows { totals = try UsageTotals(cells: row.makeRandomAccess()) }
        return totals
    }

    public func statusCounts(since: Int64?) async throws -> [UsageStatusCount] {
        try await database.connection { connection in
            var counts: [UsageStatusCount] = []
            for try await (status, count) in try await connection.query(
                """
                SELECT status, COUNT(*) FROM usage_log WHERE ts >= \((since ?? 0) * 1000)
                GROUP BY status ORDER BY status
                """, logger: database.logger
            ).decode((Int, Int64).self) { counts.append(UsageStatusCount(status: status, requests: Int(count))) }
            return counts
        }
    }

    public func hourlyTotals(from first: Int64) async throws -> [Int64: UsageTotals] {
        try await database.connection { connection in
            var byHour: [Int64: UsageTotals] = [:]
            for try await row in try await connection.query(
                "SELECT hour, \(unescaped: Self.totalsColumns) FROM usage_hourly WHERE hour >= \(first) GROUP BY hour",
                logger: database.logger)
            {
                let cells = row.makeRandomAccess()
                byHour[try cells["hour"].decode(Int64.self)] = try UsageTotals(cells: cells)
            }
            return byHour
        }
    }

    public func modelTotals(model: String?) async throws -> [ModelTotals] {
        try await database.connection { connection in
            var totals: [ModelTotals] = []
            for try await row in try await connection.query(
                """
                SELECT model, \(unescaped: Self.totalsColumns) FROM usage_hourly
                WHERE model <> '' AND (\(model)::text IS NULL OR model = \(model))
                GROUP BY model ORDER BY model COLLATE "C"
                """, logger: database.logger)
            {
                let cells = row.makeRandomAccess()
                totals.append(
                    ModelTotals(model: try cells["model"].decode(String.self), totals: try UsageTotals(cells: cells)))
            }
            return totals
        }
    }

    public func tokenTotals(tokenID: Int64?) async throws -> [TokenTotals] {
        try await database.connection { connection in
            var totals: [TokenTotals] = []
            for try await row in try await connection.query(
                """
                SELECT token_id, (SELECT name FROM client_tokens WHERE id = token_id) AS name,
                    \(unescaped: Self.totalsColumns)
                FROM usage_hourly WHERE token_id > 0 AND (\(tokenID)::bigint IS NULL OR token_id = \(tokenID))
                GROUP BY token_id ORDER BY token_id
                """, logger: database.logger)
            {
                let cells = row.makeRandomAccess()
                totals.append(
                    TokenTotals(
                        tokenID: try cells["token_id"].decode(Int64.self), name: try cells["name"].decode(String?.self),
                        totals: try UsageTotals(cells: cells)))
            }
            return totals
        }
    }

    public func tokenDetailsPerKey(keyID: Int64?) async throws -> [Int64: TokenDetails] {
        try await database.connection { connection in
            var details: [Int64: TokenDetails] = [:]
            for try await row in try await connection.query(
                """
                SELECT key_id, \(unescaped: Self.detailsColumns) FROM usage_hourly
                WHERE key_id > 0 AND (\(keyID)::bigint IS NULL OR key_id = \(keyID)) GROUP BY key_id
                """, logger: database.logger)
            {
                let cells = row.makeRandomAccess()
                details[try cells["key_id"].decode(Int64.self)] = try TokenDetails(cells: cells)
            }
            return details
        }
    }

    public func refusedCounts(since: Int64?) async throws -> [String: Int64] {
        try await database.connection { connection in
            var counts: [String: Int64] = [:]
            for try await (reason, count) in try await connection.query(
                """
                SELECT reason, SUM(requests)::bigint FROM refused_requests WHERE minute >= \((since ?? 0) * 1000)
                GROUP BY reason
                """, logger: database.logger
            ).decode((String, Int64).self) { counts[reason] = count }
            return counts
        }
    }

    public func metricsFigures() async throws -> MetricsFigures {
        try await snapshot { connection, logger in
            var keys: [(id: Int64, status: String, models: String?)] = []
            for try await key in try await connection.query(
                "SELECT id, status, models FROM keys ORDER BY id", logger: logger
            ).decode((Int64, String, String?).self) { keys.append(key) }
            var names: [String] = []
            for try await name in try await connection.query("SELECT model_name FROM models", logger: logger).decode(
                String.self)
            {
                names.append(name)
            }
            return MetricsFigures(keys: keys, modelNames: names)
        }
    }

    /// Runs `body` in a read-only transaction that sees one snapshot for all its statements, as a SQLite read
    /// does (PostgreSQL's default isolation gives each statement its own).
    func snapshot<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Result
    ) async throws -> Result {
        try await database.transaction { connection in
            try await connection.query(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: database.logger)
            return try await body(connection, database.logger)
        }
    }
}

extension UsageTotals {
    /// The totals in a row selected with `PostgresStatsReader.totalsColumns`.
    init(cells: PostgresRandomAccessRow) throws {
        self.init(
            requests: try cells["requests"].decode(Int64.self), successes: try cells["successes"].decode(Int64.self),
            failures: try cells["failures"].decode(Int64.self),
            promptTokens: try cells["prompt_tokens"].decode(Int64.self),
            completionTokens: try cells["completion_tokens"].decode(Int64.self),
            latencySum: try cells["latency_ms_sum"].decode(Double.self),
            ttfbSum: try cells["ttfb_ms_sum"].decode(Double.self), details: try TokenDetails(cells: cells))
    }
}

extension TokenDetails {
    /// The sums in a row selected with `PostgresStatsReader.detailsColumns`.
    init(cells: PostgresRandomAccessRow) throws {
        self.init(
            cachedTokens: try cells["cached_tokens"].decode(Int64.self),
            cachePromptTokens: try cells["cache_prompt_tokens"].decode(Int64.self),
            reasoningTokens: try cells["reasoning_tokens"].decode(Int64.self),
            audioInputTokens: try cells["audio_input_tokens"].decode(Int64.self),
            audioOutputTokens: try cells["audio_output_tokens"].decode(Int64.self))
    }
}
