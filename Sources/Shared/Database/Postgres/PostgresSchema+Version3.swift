extension PostgresSchema {
    /// v3: SQLite's v9 — cached, reasoning and audio token counts in the request log (NULL when not reported)
    /// and their sums in the hourly aggregates (see `Schema.createVersion9`).
    static let version3 = Migration(
        version: 3, name: "v3: cached, reasoning and audio token counts",
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
