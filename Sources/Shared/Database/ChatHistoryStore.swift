import Foundation
import GRDB

/// The chat history on SQLite.
public struct ChatHistoryStore: ChatHistoryStoring {
    /// The shared database.
    public let database: ProxyDatabase

    /// The history in `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    /// Conversations with the current name of the key that served each.
    static let query = "SELECT c.*, k.name AS key_name FROM chat_history c LEFT JOIN keys k ON k.id = c.key_id"

    public func record(model: String, keyID: Int64?, request: String, response: String, timestamp: Date) async throws {
        try await database.pool.write { db in
            try db.execute(
                sql: "INSERT INTO chat_history (key_id, model, request, response, timestamp) VALUES (?, ?, ?, ?, ?)",
                arguments: [keyID, model, request, response, timestamp])
        }
    }

    public func page(limit: Int, offset: Int) async throws -> (conversations: [ChatConversation], total: Int) {
        try await database.pool.read { db in
            (
                try Row.fetchAll(
                    db, sql: "\(Self.query) ORDER BY c.timestamp DESC, c.id DESC LIMIT ? OFFSET ?",
                    arguments: [limit, offset]
                ).map(Self.conversation),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chat_history") ?? 0
            )
        }
    }

    public func conversation(id: Int64) async throws -> ChatConversation? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "\(Self.query) WHERE c.id = ?", arguments: [id]).map(Self.conversation)
        }
    }

    private static func conversation(_ row: Row) -> ChatConversation {
        ChatConversation(
            id: row["id"], model: row["model"], keyID: row["key_id"], keyName: row["key_name"],
            timestamp: row["timestamp"], request: row["request"], response: row["response"])
    }
}
