import PostgresNIO
import Shared

extension PostgresStatsReader {
    public func usagePage(
        _ filter: UsageLogFilter, limit: Int, offset: Int
    ) async throws -> (entries: [UsageLogEntry], total: Int) {
        let counting = Self.query("SELECT COUNT(*) FROM usage_log", filter)
        let paging = Self.query(
            "SELECT \(Self.entryColumns) FROM usage_log", filter, page: (Int64(limit), Int64(offset)))
        return try await snapshot { connection, logger in
            var total: Int64 = 0
            for try await count in try await connection.query(counting, logger: logger).decode(Int64.self) {
                total = count
            }
            var entries: [UsageLogEntry] = []
            for try await row in try await connection.query(paging, logger: logger) {
                entries.append(try UsageLogEntry(cells: row.makeRandomAccess()))
            }
            return (entries, Int(total))
        }
    }

    /// `head` with a condition for each of `filter`'s values (none for those not given, as on SQLite), and,
    /// with `page`, the newest-first order and the page's bounds; every value bound, none in the SQL text.
    private static func query(
        _ head: String, _ filter: UsageLogFilter, page: (limit: Int64, offset: Int64)? = nil
    ) -> PostgresQuery {
        var sql = PostgresQuery.StringInterpolation(literalCapacity: 256, interpolationCount: 8)
        sql.appendLiteral(head)
        var joiner = " WHERE "
        func condition(_ text: String, _ value: (some PostgresDynamicTypeEncodable)?) {
            guard let value else { return }
            sql.appendLiteral(joiner + text)
            sql.appendInterpolation(value)
            joiner = " AND "
        }
        condition("key_id = ", filter.keyID)
        condition("token_id = ", filter.tokenID)
        condition("model = ", filter.model)
        condition("status = ", filter.status)
        condition("ts >= ", filter.from)
        condition("ts < ", filter.to)
        if let page {
            sql.appendLiteral(" ORDER BY ts DESC, id DESC LIMIT ")
            sql.appendInterpolation(page.limit)
            sql.appendLiteral(" OFFSET ")
            sql.appendInterpolation(page.offset)
        }
        return PostgresQuery(stringInterpolation: sql)
    }

    private static let entryColumns = """
        id, request_id, ts, worker, key_id, token_id, model, method, path, status, latency_ms, ttfb_ms, streamed,
        prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, audio_input_tokens,
        audio_output_tokens, error, tokens_estimated
        """
}

extension UsageLogEntry {
    /// The entry in a `usage_log` row selected with `PostgresStatsReader`'s entry columns.
    init(cells: PostgresRandomAccessRow) throws {
        func value<T: PostgresDecodable>(_ column: String, _: T.Type = T.self) throws -> T {
            try cells[column].decode(T.self)
        }
        self.init(
            id: try value("id"),
            row: UsageRow(
                requestID: try value("request_id"), timestamp: try value("ts"), worker: try value("worker"),
                keyID: try value("key_id"), tokenID: try value("token_id"), model: try value("model"),
                method: try value("method"), path: try value("path"), status: try value("status"),
                latencyMs: try value("latency_ms"), ttfbMs: try value("ttfb_ms"), streamed: try value("streamed"),
                promptTokens: try value("prompt_tokens"), completionTokens: try value("completion_tokens"),
                totalTokens: try value("total_tokens"), error: try value("error"),
                tokensEstimated: try value("tokens_estimated"), cachedTokens: try value("cached_tokens"),
                reasoningTokens: try value("reasoning_tokens"), audioInputTokens: try value("audio_input_tokens"),
                audioOutputTokens: try value("audio_output_tokens")))
    }
}
