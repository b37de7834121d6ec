import PostgresNIO
import Shared

extension PostgresStatsReader {
    public func usagePage(
        _ filter: UsageLogFilter, limit: Int, offset: Int
    ) async throws -> (entries: [UsageLogEntry], total: Int) {
        let conditions: PostgresQuery = """
            (\(filter.keyID)::bigint IS NULL OR key_id = \(filter.keyID))
            AND (\(filter.tokenID)::bigint IS NULL OR token_id = \(filter.tokenID))
            AND (\(filter.model)::text IS NULL OR model = \(filter.model))
            AND (\(filter.status)::integer IS NULL OR status = \(filter.status))
            AND (\(filter.from)::bigint IS NULL OR ts >= \(filter.from))
            AND (\(filter.to)::bigint IS NULL OR ts < \(filter.to))
            """
        return try await snapshot { connection, logger in
            var total: Int64 = 0
            for try await count in try await connection.query(
                Self.query("SELECT COUNT(*) FROM usage_log WHERE", conditions, ""), logger: logger
            ).decode(Int64.self) { total = count }
            var entries: [UsageLogEntry] = []
            let rows = try await connection.query(
                Self.query(
                    "SELECT \(Self.entryColumns) FROM usage_log WHERE", conditions,
                    "ORDER BY ts DESC, id DESC LIMIT \(limit) OFFSET \(offset)"), logger: logger)
            for try await row in rows { entries.append(try UsageLogEntry(cells: row.makeRandomAccess())) }
            return (entries, Int(total))
        }
    }

    /// `conditions` between a fixed head and tail of SQL, its bindings kept.
    private static func query(_ head: String, _ conditions: PostgresQuery, _ tail: String) -> PostgresQuery {
        PostgresQuery(unsafeSQL: head + " " + conditions.sql + " " + tail, binds: conditions.binds)
    }

    private static let entryColumns = """
        id, request_id, ts, worker, key_id, token_id, model, method, path, status, latency_ms, ttfb_ms, streamed,
        prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, audio_input_tokens,
        audio_output_tokens, error
        """
}

extension UsageLogEntry {
    /// The entry in a `usage_log` row selected with `PostgresStatsReader`'s entry columns.
    init(cells: PostgresRandomAccessRow) throws {
        func value<T: PostgresDecodable>(_ column: String, _: T.Type = T.self) throws -> T {
            try cells[column].decode(T.self)
        }
        self.init(
            id: try value("id"), requestID: try value("request_id"), timestamp: try value("ts"),
            worker: try value("worker"), keyID: try value("key_id"), tokenID: try value("token_id"),
            model: try value("model"), method: try value("method"), path: try value("path"),
            status: try value("status"), latencyMs: try value("latency_ms"), ttfbMs: try value("ttfb_ms"),
            streamed: try value("streamed"), promptTokens: try value("prompt_tokens"),
            completionTokens: try value("completion_tokens"), totalTokens: try value("total_tokens"),
            cachedTokens: try value("cached_tokens"), reasoningTokens: try value("reasoning_tokens"),
            audioInputTokens: try value("audio_input_tokens"), audioOutputTokens: try value("audio_output_tokens"),
            error: try value("error"))
    }
}
