import GRDB

extension StatsRoutes {
    /// Sums of the token details the upstreams reported, and the prompt tokens the cache hit rate is taken over.
    struct TokenDetails: Sendable {
        var cachedTokens: Int64 = 0
        /// Prompt tokens of the requests that reported a cached count.
        var cachePromptTokens: Int64 = 0
        var reasoningTokens: Int64 = 0
        var audioInputTokens: Int64 = 0
        var audioOutputTokens: Int64 = 0

        /// No tokens.
        static let none = TokenDetails()

        /// The SELECT list that sums these columns of `usage_hourly`.
        static let columns = """
            COALESCE(SUM(cached_tokens), 0) AS cached_tokens,
            COALESCE(SUM(cache_prompt_tokens), 0) AS cache_prompt_tokens,
            COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens,
            COALESCE(SUM(audio_input_tokens), 0) AS audio_input_tokens,
            COALESCE(SUM(audio_output_tokens), 0) AS audio_output_tokens
            """

        private init() {}

        /// The sums in a row selected with `columns`.
        init(row: Row) {
            cachedTokens = row["cached_tokens"]
            cachePromptTokens = row["cache_prompt_tokens"]
            reasoningTokens = row["reasoning_tokens"]
            audioInputTokens = row["audio_input_tokens"]
            audioOutputTokens = row["audio_output_tokens"]
        }

        /// The sums per key from the hourly aggregates (all time), of one key or of every key.
        static func perKey(_ services: AdminServices, keyID: Int64? = nil) async throws -> [Int64: TokenDetails] {
            try await services.database.pool.read { db in
                Dictionary(
                    uniqueKeysWithValues: try Row.fetchAll(
                        db,
                        sql: """
                            SELECT key_id, \(columns) FROM usage_hourly
                            WHERE key_id > 0 AND (? IS NULL OR key_id = ?) GROUP BY key_id
                            """, arguments: [keyID, keyID]
                    ).map { row -> (Int64, TokenDetails) in (row["key_id"], TokenDetails(row: row)) })
            }
        }

        /// Cached prompt tokens over the prompt tokens of the requests that reported a cached count; nil when
        /// none did.
        var cacheHitRate: Double? {
            cachePromptTokens > 0 ? Double(cachedTokens) / Double(cachePromptTokens) : nil
        }
    }
}
