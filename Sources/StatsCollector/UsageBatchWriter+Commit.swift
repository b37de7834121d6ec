import GRDB
import Shared

extension UsageBatchWriter {
    /// An aggregate row's key: `usage_hourly`'s (hour, key, model, token), or a per key × model row's with
    /// hour and token 0.
    struct HourlyKey: Hashable, Comparable {
        var hour: Int64
        var keyID: Int64
        var model: String
        var tokenID: Int64

        static func < (lhs: Self, rhs: Self) -> Bool {
            (lhs.hour, lhs.keyID, lhs.model, lhs.tokenID) < (rhs.hour, rhs.keyID, rhs.model, rhs.tokenID)
        }
    }

    /// What some usage rows add to an aggregate row.
    struct Totals {
        var requests: Int64 = 0
        var successes: Int64 = 0
        var failures: Int64 = 0
        var promptTokens: Int64 = 0
        var completionTokens: Int64 = 0
        var cachedTokens: Int64 = 0
        /// Prompt tokens of the rows that reported a cached count: the cache hit rate's denominator.
        var cachePromptTokens: Int64 = 0
        var reasoningTokens: Int64 = 0
        var audioInputTokens: Int64 = 0
        var audioOutputTokens: Int64 = 0
        var latency: Double = 0
        var ttfb: Double = 0
        var lastUsed: Int64 = 0

        /// Adds `row`'s request, outcome, tokens and times.
        mutating func add(_ row: UsageRow) {
            requests += 1
            if row.failed { failures += 1 } else { successes += 1 }
            promptTokens += Int64(row.promptTokens ?? 0)
            completionTokens += Int64(row.completionTokens ?? 0)
            if let cached = row.cachedTokens {
                cachedTokens += Int64(cached)
                cachePromptTokens += Int64(row.promptTokens ?? 0)
            }
            reasoningTokens += Int64(row.reasoningTokens ?? 0)
            audioInputTokens += Int64(row.audioInputTokens ?? 0)
            audioOutputTokens += Int64(row.audioOutputTokens ?? 0)
            latency += row.latencyMs
            ttfb += row.ttfbMs ?? 0
            lastUsed = max(lastUsed, row.timestamp)
        }
    }

    /// Inserts the rows, their chat-history rows, and folds the new ones into the aggregates, in the
    /// caller's transaction; returns the rows that were new (a row sent twice is stored and counted once).
    static func commit(_ rows: [UsageRow], _ db: Database) throws -> [UsageRow] {
        // A row sent twice is ignored by the unique request_id and must not count twice.
        let new = try UsageLogInsert(db).insert(rows)
        let aggregates = UsageAggregates(new)
        let (hourly, perKeyModel, perKey, perToken) =
            (aggregates.hourly, aggregates.perKeyModel, aggregates.perKey, aggregates.perToken)
        try ChatHistoryInsert(db).insert(aggregates.chatHistory)
        for (key, totals) in hourly {
            try db.cachedStatement(
                sql: """
                    INSERT INTO usage_hourly (hour, key_id, model, token_id, requests, successes, failures,
                        prompt_tokens, completion_tokens, latency_ms_sum, ttfb_ms_sum, cached_tokens,
                        cache_prompt_tokens, reasoning_tokens, audio_input_tokens, audio_output_tokens)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (hour, key_id, model, token_id) DO UPDATE SET
                        requests = requests + excluded.requests, successes = successes + excluded.successes,
                        failures = failures + excluded.failures, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                        completion_tokens = completion_tokens + excluded.completion_tokens,
                        latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum,
                        ttfb_ms_sum = ttfb_ms_sum + excluded.ttfb_ms_sum,
                        cached_tokens = cached_tokens + excluded.cached_tokens,
                        cache_prompt_tokens = cache_prompt_tokens + excluded.cache_prompt_tokens,
                        reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
                        audio_input_tokens = audio_input_tokens + excluded.audio_input_tokens,
                        audio_output_tokens = audio_output_tokens + excluded.audio_output_tokens
                    """
            ).execute(
                arguments: [
                    key.hour, key.keyID, key.model, key.tokenID, totals.requests, totals.successes, totals.failures,
                    totals.promptTokens, totals.completionTokens, totals.latency, totals.ttfb, totals.cachedTokens,
                    totals.cachePromptTokens, totals.reasoningTokens, totals.audioInputTokens,
                    totals.audioOutputTokens,
                ])
        }
        for (key, totals) in perKeyModel {
            try db.cachedStatement(
                sql: """
                    INSERT INTO usage_stats (key_id, model, usage_count, last_used) VALUES (?, ?, ?, ?)
                    ON CONFLICT (key_id, model) DO UPDATE SET
                        usage_count = usage_count + excluded.usage_count,
                        last_used = MAX(COALESCE(last_used, ''), excluded.last_used)
                    """
            ).execute(arguments: [key.keyID, key.model, totals.requests, Self.date(totals.lastUsed)])
        }
        for (keyID, totals) in perKey {
            try db.cachedStatement(
                sql: """
                    UPDATE keys SET usage_count = usage_count + ?, success_count = success_count + ?,
                        failure_count = failure_count + ?, prompt_tokens = prompt_tokens + ?,
                        completion_tokens = completion_tokens + ?, last_used = MAX(COALESCE(last_used, ''), ?)
                    WHERE id = ?
                    """
            ).execute(
                arguments: [
                    totals.requests, totals.successes, totals.failures, totals.promptTokens, totals.completionTokens,
                    Self.date(totals.lastUsed), keyID,
                ])
        }
        for (tokenID, totals) in perToken {
            try db.cachedStatement(
                sql: """
                    UPDATE client_tokens SET request_count = request_count + ?, prompt_tokens = prompt_tokens + ?,
                        completion_tokens = completion_tokens + ?, last_used = MAX(COALESCE(last_used, ''), ?)
                    WHERE id = ?
                    """
            ).execute(
                arguments: [
                    totals.requests, totals.promptTokens, totals.completionTokens, Self.date(totals.lastUsed), tokenID,
                ])
        }
        return new
    }

    /// The time as GRDB stores a `Date`, made without `DateFormatter`.
    private static func date(_ milliseconds: Int64) -> String {
        SQLiteDateText.format(milliseconds: milliseconds)
    }
}
