import GRDB
import Shared

/// Inserts usage rows into `usage_log` with multi-row statements, binding each value directly.
///
/// Rows go in chunks of `MultiRowInsert.chunkSizes` rows per statement: each statement's own work (opening
/// its cursors, stepping, resetting) is then paid once per chunk rather than once per row. The statements
/// come from GRDB's cache, one per chunk size, prepared once per connection.
struct UsageLogInsert {
    static let columns = [
        "request_id", "ts", "worker", "key_id", "token_id", "model", "method", "path", "status", "latency_ms",
        "ttfb_ms", "streamed", "prompt_tokens", "completion_tokens", "total_tokens", "error", "tokens_estimated",
        "cached_tokens", "reasoning_tokens", "audio_input_tokens", "audio_output_tokens",
    ]
    private static let sql = MultiRowInsert.sql("INSERT OR IGNORE INTO usage_log", columns: columns)
    private let db: Database

    /// The inserter of `db`, for the caller's transaction.
    init(_ db: Database) {
        self.db = db
    }

    /// Inserts `rows`; returns those that were new, in order: a row whose request id is stored already, or
    /// came earlier in `rows`, is ignored by the unique request id.
    func insert(_ rows: [UsageRow]) throws -> [UsageRow] {
        guard !rows.isEmpty else { return [] }
        // `id` is a plain INTEGER PRIMARY KEY: each new row takes the largest id plus one, so the rows this
        // call stores are exactly those above the largest id before it (the transaction keeps others out).
        let before = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MAX(id) FROM usage_log")) ?? 0
        let stored = try MultiRowInsert.insert(
            count: rows.count, into: db, sql: Self.sql, width: Self.columns.count, failure: "usage_log insert failed"
        ) { Self.bind(rows[$0], to: $1, from: $2) }
        guard stored < rows.count else { return rows }
        // Some were there already (a row sent again): the new ones are those stored above `before`.
        var new = Set(
            try String.fetchAll(
                db.cachedStatement(sql: "SELECT request_id FROM usage_log WHERE id > ?"), arguments: [before]))
        return rows.filter { new.remove($0.requestID) != nil }
    }

    private static func bind(_ row: UsageRow, to bindings: DirectBindings, from base: Int32) {
        bindings.bind(row.requestID, at: base + 1)
        bindings.bind(row.timestamp, at: base + 2)
        bindings.bind(Int64(row.worker), at: base + 3)
        bindings.bind(row.keyID, at: base + 4)
        bindings.bind(row.tokenID, at: base + 5)
        bindings.bind(row.model, at: base + 6)
        bindings.bind(row.method, at: base + 7)
        bindings.bind(row.path, at: base + 8)
        bindings.bind(Int64(row.status), at: base + 9)
        bindings.bind(row.latencyMs, at: base + 10)
        bindings.bind(row.ttfbMs, at: base + 11)
        bindings.bind(row.streamed, at: base + 12)
        bindings.bind(row.promptTokens.map(Int64.init), at: base + 13)
        bindings.bind(row.completionTokens.map(Int64.init), at: base + 14)
        bindings.bind(row.totalTokens.map(Int64.init), at: base + 15)
        bindings.bind(row.error, at: base + 16)
        bindings.bind(row.tokensEstimated, at: base + 17)
        bindings.bind(row.cachedTokens.map(Int64.init), at: base + 18)
        bindings.bind(row.reasoningTokens.map(Int64.init), at: base + 19)
        bindings.bind(row.audioInputTokens.map(Int64.init), at: base + 20)
        bindings.bind(row.audioOutputTokens.map(Int64.init), at: base + 21)
    }
}

/// Inserts the chat-history rows of new usage rows with multi-row statements, binding each value directly;
/// their texts are there only when the worker sent them (`full`).
struct ChatHistoryInsert {
    static let columns = [
        "request_id", "ts", "timestamp", "key_id", "token_id", "model", "path", "status", "streamed",
        "prompt_tokens", "completion_tokens", "total_tokens", "tokens_estimated", "latency_ms", "ttfb_ms",
        "request", "response",
    ]
    private static let sql = MultiRowInsert.sql("INSERT INTO chat_history", columns: columns)
    private let db: Database

    /// The inserter of `db`, for the caller's transaction.
    init(_ db: Database) {
        self.db = db
    }

    /// Inserts the chat-history rows of `rows`, which the request log took as new (so they are new here too).
    func insert(_ rows: [UsageRow]) throws {
        _ = try MultiRowInsert.insert(
            count: rows.count, into: db, sql: Self.sql, width: Self.columns.count,
            failure: "chat_history insert failed"
        ) { Self.bind(rows[$0], to: $1, from: $2) }
    }

    private static func bind(_ row: UsageRow, to bindings: DirectBindings, from base: Int32) {
        bindings.bind(row.requestID, at: base + 1)
        bindings.bind(row.timestamp, at: base + 2)
        SQLiteDateText.withText(milliseconds: row.timestamp) { bindings.bind(text: $0, at: base + 3) }
        bindings.bind(row.keyID, at: base + 4)
        bindings.bind(row.tokenID, at: base + 5)
        bindings.bind(row.model, at: base + 6)
        bindings.bind(row.path, at: base + 7)
        bindings.bind(Int64(row.status), at: base + 8)
        bindings.bind(row.streamed, at: base + 9)
        bindings.bind(row.promptTokens.map(Int64.init), at: base + 10)
        bindings.bind(row.completionTokens.map(Int64.init), at: base + 11)
        bindings.bind(row.totalTokens.map(Int64.init), at: base + 12)
        bindings.bind(row.tokensEstimated, at: base + 13)
        bindings.bind(row.latencyMs, at: base + 14)
        bindings.bind(row.ttfbMs, at: base + 15)
        bindings.bind(row.chatRequest, at: base + 16)
        bindings.bind(row.chatResponse, at: base + 17)
    }
}
