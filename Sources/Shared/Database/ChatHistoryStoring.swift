import Foundation

/// One `chat_history` row as the console shows it, with the current name of the key that served it.
public struct ChatConversation: Sendable, Equatable {
    /// Row id.
    public var id: Int64
    /// The model asked.
    public var model: String?
    /// The key that served it, when known.
    public var keyID: Int64?
    /// That key's name now; nil when it was removed since.
    public var keyName: String?
    /// When it was kept.
    public var timestamp: Date
    /// The request's messages, when kept.
    public var request: String?
    /// The answer's text, when kept.
    public var response: String?

    /// A conversation with every field given.
    public init(
        id: Int64, model: String?, keyID: Int64?, keyName: String?, timestamp: Date, request: String?,
        response: String?
    ) {
        self.id = id
        self.model = model
        self.keyID = keyID
        self.keyName = keyName
        self.timestamp = timestamp
        self.request = request
        self.response = response
    }
}

/// The chat history as the admin console writes and reads it, the same on every engine: `ChatHistoryStore`
/// (SQLite) and `PostgresChatHistoryStore`, held to one behaviour by one suite run against both. (The
/// collector writes the proxied requests' rows in its own batches.)
public protocol ChatHistoryStoring: Sendable {
    /// Keeps one exchange of the console's chat, stamped `timestamp`.
    func record(model: String, keyID: Int64?, request: String, response: String, timestamp: Date) async throws
    /// Conversations newest first, `limit` from `offset`; and how many there are.
    func page(limit: Int, offset: Int) async throws -> (conversations: [ChatConversation], total: Int)
    /// The conversation with `id`.
    func conversation(id: Int64) async throws -> ChatConversation?
}
