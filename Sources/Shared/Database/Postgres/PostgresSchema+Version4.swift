extension PostgresSchema {
    /// v4: SQLite's v10 — cached, reasoning and audio token counts in the request log (NULL when not reported)
    /// and their sums in the hourly aggregates (see `Schema.createVersion10`).
    static let version4 = Migration(
        version: 4, name: "v4: cached, reasoning and audio token counts",
        statements: [
            """
            ALTER TABLE usage_log ADD COLUMN cached_tokens BIGINT, ADD COLUMN reasoning_tokens BIGINT,
                ADD COLUMN audio_input_tokens BIGINT, ADD COLUMN audio_output_tokens BIGINT
            """,
            """
            ALTER TABLE usage_hourly ADD COLUMN cached_tokens BIGINT NOT NULL DEFAULT 0,
                ADD COLUMN cache_prompt_tokens BIGINT NOT NULL DEFAULT 0,
                ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0,
                ADD COLUMN audio_input_tokens BIGINT NOT NULL DEFAULT 0,
                ADD COLUMN audio_output_tokens BIGINT NOT NULL DEFAULT 0
            """,
        ])
}
