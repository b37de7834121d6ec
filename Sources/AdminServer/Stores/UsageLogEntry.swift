/// One request-log row (`usage_log`) as `GET /api/usage` shows it.
public struct UsageLogEntry: Sendable, Equatable {
    /// Row id.
    public var id: Int64
    /// The request's unique id.
    public var requestID: String
    /// When the request started, Unix ms.
    public var timestamp: Int64
    /// The worker that served it.
    public var worker: Int
    /// The upstream key it went to; nil when none.
    public var keyID: Int64?
    /// The client token it carried; nil when none.
    public var tokenID: Int64?
    /// The model asked for.
    public var model: String?
    /// HTTP method.
    public var method: String
    /// Request path.
    public var path: String
    /// Status answered.
    public var status: Int
    /// Whole request time, ms.
    public var latencyMs: Double
    /// Time to the first byte, ms.
    public var ttfbMs: Double?
    /// Whether the answer was streamed.
    public var streamed: Bool
    /// Token counts; nil when the answer did not report them.
    public var promptTokens: Int?
    /// Completion tokens.
    public var completionTokens: Int?
    /// Total tokens.
    public var totalTokens: Int?
    /// Cached prompt tokens.
    public var cachedTokens: Int?
    /// Reasoning tokens.
    public var reasoningTokens: Int?
    /// Audio input tokens.
    public var audioInputTokens: Int?
    /// Audio output tokens.
    public var audioOutputTokens: Int?
    /// The error recorded, if any.
    public var error: String?

    /// An entry with every field given.
    public init(
        id: Int64, requestID: String, timestamp: Int64, worker: Int, keyID: Int64?, tokenID: Int64?, model: String?,
        method: String, path: String, status: Int, latencyMs: Double, ttfbMs: Double?, streamed: Bool,
        promptTokens: Int?, completionTokens: Int?, totalTokens: Int?, cachedTokens: Int?, reasoningTokens: Int?,
        audioInputTokens: Int?, audioOutputTokens: Int?, error: String?
    ) {
        self.id = id
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
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
        self.audioInputTokens = audioInputTokens
        self.audioOutputTokens = audioOutputTokens
        self.error = error
    }
}

/// Which request-log rows a page holds: every condition given must match (nil: any).
public struct UsageLogFilter: Sendable, Equatable {
    /// The upstream key.
    public var keyID: Int64?
    /// The client token.
    public var tokenID: Int64?
    /// The model asked for.
    public var model: String?
    /// The status answered.
    public var status: Int?
    /// First time included, Unix ms.
    public var from: Int64?
    /// First time excluded, Unix ms.
    public var to: Int64?

    /// A filter with the conditions given.
    public init(
        keyID: Int64? = nil, tokenID: Int64? = nil, model: String? = nil, status: Int? = nil, from: Int64? = nil,
        to: Int64? = nil
    ) {
        self.keyID = keyID
        self.tokenID = tokenID
        self.model = model
        self.status = status
        self.from = from
        self.to = to
    }
}
