/// Request and token sums over some span of the hourly aggregates (`usage_hourly`), as every engine reads them.
public struct UsageTotals: Sendable, Equatable {
    /// Requests answered.
    public var requests: Int64
    /// Requests answered below 400.
    public var successes: Int64
    /// Requests answered 400 or above, or not at all.
    public var failures: Int64
    /// Prompt tokens reported.
    public var promptTokens: Int64
    /// Completion tokens reported.
    public var completionTokens: Int64
    /// Sum of the requests' latencies, in ms.
    public var latencySum: Double
    /// Sum of the requests' times to first byte, in ms.
    public var ttfbSum: Double
    /// Cached, reasoning and audio token sums.
    public var details: TokenDetails

    /// Totals from their parts.
    public init(
        requests: Int64, successes: Int64, failures: Int64, promptTokens: Int64, completionTokens: Int64,
        latencySum: Double, ttfbSum: Double, details: TokenDetails = .none
    ) {
        self.requests = requests
        self.successes = successes
        self.failures = failures
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.latencySum = latencySum
        self.ttfbSum = ttfbSum
        self.details = details
    }

    /// No requests.
    public static let zero = UsageTotals(
        requests: 0, successes: 0, failures: 0, promptTokens: 0, completionTokens: 0, latencySum: 0, ttfbSum: 0)
}

/// Sums of the token details the upstreams reported, and the prompt tokens the cache hit rate is taken over.
public struct TokenDetails: Sendable, Equatable {
    /// Cached prompt tokens.
    public var cachedTokens: Int64 = 0
    /// Prompt tokens of the requests that reported a cached count.
    public var cachePromptTokens: Int64 = 0
    /// Reasoning tokens.
    public var reasoningTokens: Int64 = 0
    /// Audio input tokens.
    public var audioInputTokens: Int64 = 0
    /// Audio output tokens.
    public var audioOutputTokens: Int64 = 0

    /// No tokens.
    public static let none = TokenDetails()

    /// Sums from their parts (zero where not given).
    public init(
        cachedTokens: Int64 = 0, cachePromptTokens: Int64 = 0, reasoningTokens: Int64 = 0, audioInputTokens: Int64 = 0,
        audioOutputTokens: Int64 = 0
    ) {
        self.cachedTokens = cachedTokens
        self.cachePromptTokens = cachePromptTokens
        self.reasoningTokens = reasoningTokens
        self.audioInputTokens = audioInputTokens
        self.audioOutputTokens = audioOutputTokens
    }

    /// Cached prompt tokens over the prompt tokens of the requests that reported a cached count; nil when
    /// none did.
    public var cacheHitRate: Double? {
        cachePromptTokens > 0 ? Double(cachedTokens) / Double(cachePromptTokens) : nil
    }
}
