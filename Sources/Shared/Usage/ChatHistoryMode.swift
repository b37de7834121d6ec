/// What the chat history keeps of proxied chat requests: `OPENAI_PROXY_CHAT_HISTORY`.
public enum ChatHistoryMode: String, Sendable, CaseIterable {
    /// No chat-history rows.
    case off
    /// A row per request with model, key, token, status, tokens and latency, without any text.
    case metadata
    /// As `metadata`, plus the request's messages and the answer's text, each cut to the configured size.
    case full

    /// Whether requests to `path` (without the query) get a chat-history row: chat completions, responses
    /// and completions.
    public static func recordsPath(_ path: String) -> Bool {
        path.hasSuffix("/chat/completions") || path.hasSuffix("/responses") || path.hasSuffix("/completions")
    }
}
