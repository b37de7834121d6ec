import Foundation
import PostgresNIO

/// The chat history on PostgreSQL; behaves as `ChatHistoryStore` does on SQLite.
public struct PostgresChatHistoryStore: ChatHistoryStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase

    /// The history in `database`.
    public init(database: PostgresProxyDatabase) {
        self.database = database
    }

    private static let query = """
        SELECT c.id, c.model, c.key_id, k.name, c.timestamp, c.request, c.response
        FROM chat_history c LEFT JOIN keys k ON k.id = c.key_id
        """

    public func record(model: String, keyID: Int64?, request: String, response: String, timestamp: Date) async throws {
        try await database.connection { connection in
            try await connection.query(
                """
                INSERT INTO chat_history (key_id, model, request, response, timestamp)
                VALUES (\(keyID), \(model), \(request), \(response), \(timestamp))
                """, logger: database.logger)
        }
    }

    public func page(limit: Int, offset: Int) async throws -> (conversations: [ChatConversation], total: Int) {
        // One transaction: the page and its total are read from one snapshot, as SQLite's read does.
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                \(unescaped: Self.query) ORDER BY c.timestamp DESC, c.id DESC
                LIMIT \(Int64(limit)) OFFSET \(Int64(offset))
                """, logger: database.logger)
            let conversations = try await Self.conversations(rows)
            var total: Int64 = 0
            let counted = try await connection.query("SELECT COUNT(*) FROM chat_history", logger: database.logger)
            for try await count in counted.decode(Int64.self) { total = count }
            return (conversations, Int(total))
        }
    }

    public func conversation(id: Int64) async throws -> ChatConversation? {
        try await database.connection { connection in
            try await Self.conversations(
                connection.query("\(unescaped: Self.query) WHERE c.id = \(id)", logger: database.logger)
            ).first
        }
    }

    private static func conversations(_ rows: PostgresRowSequence) async throws -> [ChatConversation] {
        var conversations: [ChatConversation] = []
        for try await (id, model, keyID, keyName, timestamp, request, response) in rows.decode(
            (Int64, String?, Int64?, String?, Date, String?, String?).self)
        {
            conversations.append(
                ChatConversation(
                    id: id, model: model, keyID: keyID, keyName: keyName, timestamp: timestamp, request: request,
                    response: response))
        }
        return conversations
    }
}
