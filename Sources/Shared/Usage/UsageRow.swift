/// What one proxied request did, sent by a worker to the stats collector and stored in `usage_log`.
public struct UsageRow: Sendable, Equatable {
    /// Unique per request; the collector stores a row once however often it is sent.
    public var requestID: String
    /// When the request arrived, in Unix milliseconds.
    public var timestamp: Int64
    /// Index of the worker that served it.
    public var worker: Int
    /// The upstream key used, when one was picked.
    public var keyID: Int64?
    /// The client token presented, when it was valid.
    public var tokenID: Int64?
    /// The `model` of the request body, when it had one.
    public var model: String?
    /// HTTP method.
    public var method: String
    /// Request path, without the query.
    public var path: String
    /// Status sent to the client.
    public var status: Int
    /// Milliseconds from arrival to the last byte sent.
    public var latencyMs: Double
    /// Milliseconds from arrival to the response head, when one was sent.
    public var ttfbMs: Double?
    /// Whether the answer was an event stream.
    public var streamed: Bool
    /// Prompt tokens from the upstream's `usage`, when present.
    public var promptTokens: Int?
    /// Completion tokens from the upstream's `usage`, when present.
    public var completionTokens: Int?
    /// Total tokens from the upstream's `usage`, when present.
    public var totalTokens: Int?
    /// Prompt tokens served from the prompt cache, when the upstream's `usage` reported them.
    public var cachedTokens: Int?
    /// Completion tokens spent reasoning, when reported.
    public var reasoningTokens: Int?
    /// Prompt tokens that were audio, when reported.
    public var audioInputTokens: Int?
    /// Completion tokens that were audio, when reported.
    public var audioOutputTokens: Int?
    /// Short error code when the request failed inside the proxy.
    public var error: String?
    /// True when the token counts were estimated by the proxy rather than reported by the upstream.
    public var tokensEstimated: Bool
    /// True when the collector keeps a `chat_history` row for this request.
    public var keepsChatHistory: Bool
    /// The request's messages as sent (only with `OPENAI_PROXY_CHAT_HISTORY=full`), cut to the configured size.
    public var chatRequest: String?
    /// The answer's text, reassembled from the events for a stream (only with `full`), cut to the configured size.
    public var chatResponse: String?

    /// A row with every field given; the chat-history fields, the token details and `tokensEstimated` default
    /// to absent / false.
    public init(
        requestID: String, timestamp: Int64, worker: Int, keyID: Int64?, tokenID: Int64?, model: String?,
        method: String, path: String, status: Int, latencyMs: Double, ttfbMs: Double?, streamed: Bool,
        promptTokens: Int?, completionTokens: Int?, totalTokens: Int?, error: String?, tokensEstimated: Bool = false,
        keepsChatHistory: Bool = false, chatRequest: String? = nil, chatResponse: String? = nil,
        cachedTokens: Int? = nil, reasoningTokens: Int? = nil, audioInputTokens: Int? = nil,
        audioOutputTokens: Int? = nil
    ) {
        self.requestID = requestID
        self.timestamp = timestamp
        self.worker = worker
        self.keyID = keyID
        self.tokenID = tokenID
        self.model = model
        self.method = method
        self.path = path
        self.status = status
        self.latencyMs = latencyMs
        self.ttfbMs = ttfbMs
        self.streamed = streamed
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
        self.error = error
        self.tokensEstimated = tokensEstimated
        self.keepsChatHistory = keepsChatHistory
        self.chatRequest = chatRequest
        self.chatResponse = chatResponse
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
        self.audioInputTokens = audioInputTokens
        self.audioOutputTokens = audioOutputTokens
    }

    /// Whether the request failed: a proxy error or a status of 400 and above.
    public var failed: Bool { status >= 400 || error != nil }
}
