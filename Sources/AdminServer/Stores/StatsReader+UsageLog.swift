import GRDB
import Shared

extension StatsReader {
    public func usagePage(
        _ filter: UsageLogFilter, limit: Int, offset: Int
    ) async throws -> (entries: [UsageLogEntry], total: Int) {
        var conditions: [String] = []
        var arguments = StatementArguments()
        func condition(_ sql: String, _ value: (any DatabaseValueConvertible)?) {
            guard let value else { return }
            conditions.append(sql)
            arguments += [value]
        }
        condition("key_id = ?", filter.keyID)
        condition("token_id = ?", filter.tokenID)
        condition("model = ?", filter.model)
        condition("status = ?", filter.status)
        condition("ts >= ?", filter.from)
        condition("ts < ?", filter.to)
        let clause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let bound = arguments
        return try await database.pool.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log \(clause)", arguments: bound) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM usage_log \(clause) ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?",
                arguments: bound + [limit, offset])
            return (rows.map(UsageLogEntry.init(row:)), total)
        }
    }
}

extension UsageLogEntry {
    /// The entry in a `usage_log` row.
    init(row: Row) {
        self.init(
            id: row["id"],
            row: UsageRow(
                requestID: row["request_id"], timestamp: row["ts"], worker: row["worker"], keyID: row["key_id"],
                tokenID: row["token_id"], model: row["model"], method: row["method"], path: row["path"],
                status: row["status"], latencyMs: row["latency_ms"], ttfbMs: row["ttfb_ms"], streamed: row["streamed"],
                promptTokens: row["prompt_tokens"], completionTokens: row["completion_tokens"],
                totalTokens: row["total_tokens"], error: row["error"], tokensEstimated: row["tokens_estimated"],
                cachedTokens: row["cached_tokens"], reasoningTokens: row["reasoning_tokens"],
                audioInputTokens: row["audio_input_tokens"], audioOutputTokens: row["audio_output_tokens"]))
    }
}
