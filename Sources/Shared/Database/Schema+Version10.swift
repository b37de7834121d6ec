import GRDB

extension Schema {
    /// The name of the v10 migration.
    static let version10Name = "v10: cached, reasoning and audio token counts"

    /// v10: the token details OpenAI reports inside `usage`, in the request log and the hourly aggregates.
    ///
    /// In `usage_log` they are NULL when the answer did not report them (absent is not 0). In `usage_hourly`
    /// they are sums, and `cache_prompt_tokens` sums the prompt tokens of the rows that reported a cached count:
    /// the cache hit rate is `cached_tokens / cache_prompt_tokens`, so traffic that cannot hit the cache
    /// (embeddings, estimates) does not lower it.
    static func createVersion10(_ db: Database) throws {
        try db.execute(
            sql: """
                ALTER TABLE usage_log ADD COLUMN cached_tokens INTEGER;
                ALTER TABLE usage_log ADD COLUMN reasoning_tokens INTEGER;
                ALTER TABLE usage_log ADD COLUMN audio_input_tokens INTEGER;
                ALTER TABLE usage_log ADD COLUMN audio_output_tokens INTEGER;

                ALTER TABLE usage_hourly ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE usage_hourly ADD COLUMN cache_prompt_tokens INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE usage_hourly ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE usage_hourly ADD COLUMN audio_input_tokens INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE usage_hourly ADD COLUMN audio_output_tokens INTEGER NOT NULL DEFAULT 0;
                """)
    }
}
