import Foundation
import Shared

/// One upstream key in the admin API: everything about it except its value, which appears only masked.
struct KeyView: Encodable {
    /// The upstream's last rate-limit figures for the key.
    struct RateLimit: Encodable {
        @NullEncoded var remainingRequests: Int64?
        @NullEncoded var remainingTokens: Int64?
        @NullEncoded var resetRequestsAt: String?
        @NullEncoded var resetTokensAt: String?
        @NullEncoded var updatedAt: String?

        enum CodingKeys: String, CodingKey {
            case remainingRequests = "remaining_requests", remainingTokens = "remaining_tokens"
            case resetRequestsAt = "reset_requests_at", resetTokensAt = "reset_tokens_at", updatedAt = "updated_at"
        }
    }

    /// The last health probe of the key.
    struct Probe: Encodable {
        @NullEncoded var at: String?
        @NullEncoded var status: Int?
        @NullEncoded var latencyMs: Double?
        @NullEncoded var error: String?

        enum CodingKeys: String, CodingKey { case at, status, error, latencyMs = "latency_ms" }
    }

    let id: Int64
    let name: String
    /// Masked, never the value.
    let keyValue: String
    let status: String
    @NullEncoded var statusReason: String?
    @NullEncoded var statusCode: Int?
    @NullEncoded var statusSince: String?
    @NullEncoded var nextProbeAt: String?
    let consecutiveFailures: Int
    let rateLimit: RateLimit
    @NullEncoded var models: [String]?
    @NullEncoded var modelsCheckedAt: String?
    let lastProbe: Probe
    let usageCount: Int64
    let successCount: Int64
    let failureCount: Int64
    let promptTokens: Int64
    let completionTokens: Int64
    /// The token details the upstream reported for the key's requests, summed (all time).
    let cachedTokens: Int64
    let reasoningTokens: Int64
    let audioInputTokens: Int64
    let audioOutputTokens: Int64
    /// Cached over the prompt tokens of the requests that reported a cached count; null when none did.
    @NullEncoded var cacheHitRate: Double?
    @NullEncoded var lastUsed: Date?
    let createdAt: Date
    let updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, name, status, models, keyValue = "key_value", statusReason = "status_reason"
        case statusCode = "status_code", statusSince = "status_since", nextProbeAt = "next_probe_at"
        case consecutiveFailures = "consecutive_failures", rateLimit = "rate_limit"
        case modelsCheckedAt = "models_checked_at", lastProbe = "last_probe", usageCount = "usage_count"
        case successCount = "success_count", failureCount = "failure_count", promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens", lastUsed = "last_used", createdAt = "created_at"
        case updatedAt = "updated_at", cachedTokens = "cached_tokens", reasoningTokens = "reasoning_tokens"
        case audioInputTokens = "audio_input_tokens", audioOutputTokens = "audio_output_tokens"
        case cacheHitRate = "cache_hit_rate"
    }

    /// The view of `key`, with the token details of its requests (none for a key just added).
    init(_ key: UpstreamKey, details: TokenDetails = .none) {
        let time = { (ms: Int64?) in ms.map(ISOTime.format) }
        id = key.id ?? 0
        name = key.name
        keyValue = key.hint
        status = key.status.rawValue
        statusReason = key.statusReason
        statusCode = key.statusCode
        statusSince = time(key.statusSince)
        nextProbeAt = time(key.nextProbeAt)
        consecutiveFailures = key.consecutiveFailures
        rateLimit = RateLimit(
            remainingRequests: key.rateLimitRemainingRequests, remainingTokens: key.rateLimitRemainingTokens,
            resetRequestsAt: time(key.rateLimitResetRequestsAt), resetTokensAt: time(key.rateLimitResetTokensAt),
            updatedAt: time(key.rateLimitUpdatedAt))
        models = key.models
        modelsCheckedAt = time(key.modelsCheckedAt)
        lastProbe = Probe(
            at: time(key.lastProbeAt), status: key.lastProbeStatus, latencyMs: key.lastProbeLatencyMs,
            error: key.lastProbeError)
        usageCount = key.usageCount
        successCount = key.successCount
        failureCount = key.failureCount
        promptTokens = key.promptTokens
        completionTokens = key.completionTokens
        cachedTokens = details.cachedTokens
        reasoningTokens = details.reasoningTokens
        audioInputTokens = details.audioInputTokens
        audioOutputTokens = details.audioOutputTokens
        cacheHitRate = details.cacheHitRate
        lastUsed = key.lastUsed
        createdAt = key.createdAt
        updatedAt = key.updatedAt
    }
}
