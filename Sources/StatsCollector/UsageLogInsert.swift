import GRDB
import GRDBSQLite
import Shared

/// Inserts usage rows into `usage_log` with one prepared statement, binding each value directly.
///
/// Building GRDB's argument arrays (an existential per value) cost more than SQLite's own insert work:
/// 16% of the collector's time at load. The statement comes from GRDB's cache and is left reset.
struct UsageLogInsert {
    private let statement: Statement
    private let connection: SQLiteConnection?

    /// The insert statement of `db`.
    init(_ db: Database) throws {
        statement = try db.cachedStatement(
            sql: """
                INSERT OR IGNORE INTO usage_log (request_id, ts, worker, key_id, token_id, model, method, path,
                    status, latency_ms, ttfb_ms, streamed, prompt_tokens, completion_tokens, total_tokens, error,
                    tokens_estimated)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        connection = db.sqliteConnection
    }

    /// Inserts `row`; true when it was new (a row sent twice is ignored by its unique request id).
    func insert(_ row: UsageRow) throws -> Bool {
        let handle = statement.sqliteStatement
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        bind(row.requestID, at: 1)
        sqlite3_bind_int64(handle, 2, row.timestamp)
        sqlite3_bind_int64(handle, 3, Int64(row.worker))
        bind(row.keyID, at: 4)
        bind(row.tokenID, at: 5)
        bind(row.model, at: 6)
        bind(row.method, at: 7)
        bind(row.path, at: 8)
        sqlite3_bind_int64(handle, 9, Int64(row.status))
        sqlite3_bind_double(handle, 10, row.latencyMs)
        if let ttfb = row.ttfbMs { sqlite3_bind_double(handle, 11, ttfb) }
        sqlite3_bind_int64(handle, 12, row.streamed ? 1 : 0)
        bind(row.promptTokens.map(Int64.init), at: 13)
        bind(row.completionTokens.map(Int64.init), at: 14)
        bind(row.totalTokens.map(Int64.init), at: 15)
        bind(row.error, at: 16)
        sqlite3_bind_int64(handle, 17, row.tokensEstimated ? 1 : 0)
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "usage_log insert failed")
        }
        return sqlite3_changes(connection) == 1
    }

    private func bind(_ value: Int64?, at index: Int32) {
        if let value { sqlite3_bind_int64(statement.sqliteStatement, index, value) }
    }

    private func bind(_ value: String?, at index: Int32) {
        guard let value else { return }
        var text = value
        text.withUTF8 { bytes in
            // SQLITE_TRANSIENT: SQLite copies the bytes before this returns.
            _ = sqlite3_bind_text(
                statement.sqliteStatement, index,
                UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self),
                Int32(bytes.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
    }
}
