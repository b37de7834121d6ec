import GRDB

extension Schema {
    /// The name of the v6 migration: a test migrates a database up to it, then the rest of the way.
    static let version6Name = "v6: refused-request counts, token quota reservations"

    /// v7: only the indexes the request log and the chat history are read by. Every index costs a B-tree
    /// insert for each proxied request in the collector.
    ///
    /// - `usage_log_key_ts`: only `GET /api/usage?key_id=` could use it; that filter now walks `usage_log_ts`
    ///   newest first, as its page is ordered. The unique `request_id`, and `ts` (pruning, stats, paging) stay.
    /// - `chat_history_request_id` (unique): the collector writes a chat-history row only for a usage row that
    ///   `usage_log`'s unique `request_id` took as new, so it never decided anything; nothing looks rows up by it.
    static func createVersion7(_ db: Database) throws {
        try db.execute(
            sql: """
                DROP INDEX IF EXISTS usage_log_key_ts;
                DROP INDEX IF EXISTS chat_history_request_id;
                """)
    }
}
