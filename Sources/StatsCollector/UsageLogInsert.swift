import GRDB
import GRDBSQLite
import Shared

/// Inserts usage rows into `usage_log` with one prepared statement, binding each value directly.
///
/// The statement comes from GRDB's cache, is prepared once per batch and is left reset.
struct UsageLogInsert {
    private let bindings: DirectBindings
    private let connection: SQLiteConnection?

    /// The insert statement of `db`.
    init(_ db: Database) throws {
        bindings = DirectBindings(
            statement: try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO usage_log (request_id, ts, worker, key_id, token_id, model, method, path,
                        status, latency_ms, ttfb_ms, streamed, prompt_tokens, completion_tokens, total_tokens, error,
                        tokens_estimated)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """))
        connection = db.sqliteConnection
    }

    /// Inserts `row`; true when it was new (a row sent twice is ignored by its unique request id).
    func insert(_ row: UsageRow) throws -> Bool {
        bindings.bind(row.requestID, at: 1)
        bindings.bind(row.timestamp, at: 2)
        bindings.bind(Int64(row.worker), at: 3)
        bindings.bind(row.keyID, at: 4)
        bindings.bind(row.tokenID, at: 5)
        bindings.bind(row.model, at: 6)
        bindings.bind(row.method, at: 7)
        bindings.bind(row.path, at: 8)
        bindings.bind(Int64(row.status), at: 9)
        bindings.bind(row.latencyMs, at: 10)
        bindings.bind(row.ttfbMs, at: 11)
        bindings.bind(row.streamed, at: 12)
        bindings.bind(row.promptTokens.map(Int64.init), at: 13)
        bindings.bind(row.completionTokens.map(Int64.init), at: 14)
        bindings.bind(row.totalTokens.map(Int64.init), at: 15)
        bindings.bind(row.error, at: 16)
        bindings.bind(row.tokensEstimated, at: 17)
        try bindings.step(failure: "usage_log insert failed")
        return sqlite3_changes(connection) == 1
    }
}

/// Inserts the chat-history row of a new usage row with one prepared statement, binding each value directly;
/// its texts are there only when the worker sent them (`full`).
struct ChatHistoryInsert {
    private let bindings: DirectBindings

    /// The insert statement of `db`.
    init(_ db: Database) throws {
        bindings = DirectBindings(
            statement: try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO chat_history (request_id, ts, timestamp, key_id, token_id, model, path, status,
                        streamed, prompt_tokens, completion_tokens, total_tokens, tokens_estimated, latency_ms,
                        ttfb_ms, request, response)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """))
    }

    /// Inserts the chat-history row of `row`, which the request log took as new (so it is new here too).
    func insert(_ row: UsageRow) throws {
        bindings.bind(row.requestID, at: 1)
        bindings.bind(row.timestamp, at: 2)
        bindings.bind(SQLiteDateText.format(milliseconds: row.timestamp), at: 3)
        bindings.bind(row.keyID, at: 4)
        bindings.bind(row.tokenID, at: 5)
        bindings.bind(row.model, at: 6)
        bindings.bind(row.path, at: 7)
        bindings.bind(Int64(row.status), at: 8)
        bindings.bind(row.streamed, at: 9)
        bindings.bind(row.promptTokens.map(Int64.init), at: 10)
        bindings.bind(row.completionTokens.map(Int64.init), at: 11)
        bindings.bind(row.totalTokens.map(Int64.init), at: 12)
        bindings.bind(row.tokensEstimated, at: 13)
        bindings.bind(row.latencyMs, at: 14)
        bindings.bind(row.ttfbMs, at: 15)
        bindings.bind(row.chatRequest, at: 16)
        bindings.bind(row.chatResponse, at: 17)
        try bindings.step(failure: "chat_history insert failed")
    }
}
