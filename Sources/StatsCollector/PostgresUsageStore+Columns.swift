import PostgresNIO
import Shared

extension PostgresUsageStore {
    /// `usage_log`: one row per request id, a row already there skipped; returns the request ids stored. A
    /// column added to the table is one entry here.
    static let usageLog = PostgresMultiRowInsert<UsageRow>(
        "INSERT INTO usage_log",
        columns: [
            .init("request_id") { $0.requestID },
            .init("ts") { $0.timestamp },
            .init("worker") { Int64($0.worker) },
            .init("key_id") { $0.keyID },
            .init("token_id") { $0.tokenID },
            .init("model") { $0.model },
            .init("method") { $0.method },
            .init("path") { $0.path },
            .init("status") { Int64($0.status) },
            .init("latency_ms") { $0.latencyMs },
            .init("ttfb_ms") { $0.ttfbMs },
            .init("streamed") { $0.streamed },
            .init("prompt_tokens") { $0.promptTokens.map(Int64.init) },
            .init("completion_tokens") { $0.completionTokens.map(Int64.init) },
            .init("total_tokens") { $0.totalTokens.map(Int64.init) },
            .init("error") { $0.error },
            .init("tokens_estimated") { $0.tokensEstimated },
            .init("cached_tokens") { $0.cachedTokens.map(Int64.init) },
            .init("reasoning_tokens") { $0.reasoningTokens.map(Int64.init) },
            .init("audio_input_tokens") { $0.audioInputTokens.map(Int64.init) },
            .init("audio_output_tokens") { $0.audioOutputTokens.map(Int64.init) },
        ],
        tail: "ON CONFLICT (request_id) DO NOTHING RETURNING request_id")

    /// `chat_history`: a row per new usage row that keeps one; texts only when the worker sent them.
    static let chatHistory = PostgresMultiRowInsert<UsageRow>(
        "INSERT INTO chat_history",
        columns: [
            .init("request_id") { $0.requestID },
            .init("ts") { $0.timestamp },
            .init("timestamp") { date($0.timestamp) },
            .init("key_id") { $0.keyID },
            .init("token_id") { $0.tokenID },
            .init("model") { $0.model },
            .init("path") { $0.path },
            .init("status") { Int64($0.status) },
            .init("streamed") { $0.streamed },
            .init("prompt_tokens") { $0.promptTokens.map(Int64.init) },
            .init("completion_tokens") { $0.completionTokens.map(Int64.init) },
            .init("total_tokens") { $0.totalTokens.map(Int64.init) },
            .init("tokens_estimated") { $0.tokensEstimated },
            .init("latency_ms") { $0.latencyMs },
            .init("ttfb_ms") { $0.ttfbMs },
            .init("request") { $0.chatRequest },
            .init("response") { $0.chatResponse },
        ])

    /// One aggregate row: its key and what a batch adds to it.
    typealias Aggregate = (key: UsageAggregates.HourlyKey, totals: UsageAggregates.Totals)

    /// The sums `usage_hourly` keeps per hour × key × model × token; each is added to what the row holds. A sum
    /// added to the table is one entry here.
    static let hourlySums: [PostgresInsertColumn<Aggregate>] = [
        .init("requests") { $0.totals.requests },
        .init("successes") { $0.totals.successes },
        .init("failures") { $0.totals.failures },
        .init("prompt_tokens") { $0.totals.promptTokens },
        .init("completion_tokens") { $0.totals.completionTokens },
        .init("latency_ms_sum") { $0.totals.latency },
        .init("ttfb_ms_sum") { $0.totals.ttfb },
        .init("cached_tokens") { $0.totals.cachedTokens },
        .init("cache_prompt_tokens") { $0.totals.cachePromptTokens },
        .init("reasoning_tokens") { $0.totals.reasoningTokens },
        .init("audio_input_tokens") { $0.totals.audioInputTokens },
        .init("audio_output_tokens") { $0.totals.audioOutputTokens },
    ]

    /// `usage_hourly`: new aggregate rows, or sums added to the rows there.
    static let usageHourly = PostgresMultiRowInsert<Aggregate>(
        "INSERT INTO usage_hourly",
        columns: [
            .init("hour") { $0.key.hour },
            .init("key_id") { $0.key.keyID },
            .init("model") { $0.key.model },
            .init("token_id") { $0.key.tokenID },
        ] + hourlySums,
        tail: "ON CONFLICT (hour, key_id, model, token_id) DO UPDATE SET "
            + hourlySums.map { "\($0.name) = usage_hourly.\($0.name) + excluded.\($0.name)" }.joined(separator: ", "))

    /// `usage_stats`: the seed's per key × model counters.
    static let usageStats = PostgresMultiRowInsert<Aggregate>(
        "INSERT INTO usage_stats",
        columns: [
            .init("key_id") { $0.key.keyID },
            .init("model") { $0.key.model },
            .init("usage_count") { $0.totals.requests },
            .init("last_used") { date($0.totals.lastUsed) },
        ],
        tail: """
            ON CONFLICT (key_id, model) DO UPDATE SET usage_count = usage_stats.usage_count + excluded.usage_count,
                last_used = GREATEST(usage_stats.last_used, excluded.last_used)
            """)
}
