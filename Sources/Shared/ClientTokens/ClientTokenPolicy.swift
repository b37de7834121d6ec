/// The limits an operator set on a client token; every one optional.
public struct ClientTokenLimits: Sendable, Equatable {
    /// Model names the token may use; nil for any.
    public var allowedModels: [String]?
    /// Requests per minute across all workers; nil for no limit.
    public var rpmLimit: Int?
    /// Prompt plus completion tokens the token may use in all; nil for no quota.
    public var tokenQuota: Int64?
    /// When the token stops being accepted (Unix ms); nil for never.
    public var expiresAt: Int64?

    /// Limits from their parts; no argument means no limit.
    public init(allowedModels: [String]? = nil, rpmLimit: Int? = nil, tokenQuota: Int64? = nil, expiresAt: Int64? = nil)
    {
        self.allowedModels = allowedModels
        self.rpmLimit = rpmLimit
        self.tokenQuota = tokenQuota
        self.expiresAt = expiresAt
    }
}

/// What the proxy answers a client token's request with, decided by `ClientTokenPolicy`.
public enum ClientTokenDecision: Sendable, Equatable {
    /// Serve the request.
    case allow
    /// The token's expiry passed: 401.
    case expired
    /// The request names a model the token may not use: 403.
    case modelNotAllowed(String)
    /// The token has an allow-list and the request's model cannot be read (a `model` that is not a string,
    /// a multipart body that does not parse, a body of another content type): 403, as the allow-list's
    /// refusal, since the request may be one the upstream accepts.
    case modelUnreadable
    /// The token used up its token quota: 429 (the quota never resets by itself, so no `Retry-After`).
    case quotaExceeded(quota: Int64)
    /// What is left of the quota is reserved by the token's requests in flight: 429, `Retry-After: 1`.
    case quotaReserved(quota: Int64)
    /// Over the requests-per-minute limit: 429 with `Retry-After` (seconds until the minute ends).
    case rateLimited(limit: Int, retryAfterSeconds: Int)

    /// The HTTP status to answer with (200 for `allow`).
    public var status: Int {
        switch self {
        case .allow: return 200
        case .expired: return 401
        case .modelNotAllowed, .modelUnreadable: return 403
        case .quotaExceeded, .quotaReserved, .rateLimited: return 429
        }
    }

    /// OpenAI-style `error.type`.
    public var type: String {
        switch self {
        case .allow: return ""
        case .expired: return "invalid_request_error"
        case .modelNotAllowed, .modelUnreadable: return "invalid_request_error"
        case .quotaExceeded: return "insufficient_quota"
        case .quotaReserved: return "rate_limit_error"
        case .rateLimited: return "rate_limit_error"
        }
    }

    /// OpenAI-style `error.code`.
    public var code: String {
        switch self {
        case .allow: return ""
        case .expired: return "token_expired"
        case .modelNotAllowed: return "model_not_allowed"
        case .modelUnreadable: return "model_unreadable"
        case .quotaExceeded: return "token_quota_exceeded"
        case .quotaReserved: return "token_quota_reserved"
        case .rateLimited: return "rate_limit_exceeded"
        }
    }

    /// One sentence for the client.
    public var message: String {
        switch self {
        case .allow: return ""
        case .expired: return "This proxy token has expired."
        case .modelNotAllowed(let model): return "This proxy token may not use the model '\(model)'."
        case .modelUnreadable:
            return "This proxy token may use only certain models, and the model of this request cannot be read."
        case .quotaExceeded(let quota): return "This proxy token has used its quota of \(quota) tokens."
        case .quotaReserved(let quota):
            return
                "The rest of this proxy token's quota of \(quota) tokens is reserved by its requests in progress; "
                + "retry when they finish."
        case .rateLimited(let limit, _): return "This proxy token is limited to \(limit) requests per minute."
        }
    }

    /// Seconds for the `Retry-After` header, when there is one.
    public var retryAfterSeconds: Int? {
        switch self {
        case .rateLimited(_, let seconds): return seconds
        case .quotaReserved: return 1
        default: return nil
        }
    }
}

/// Decides whether a client token may make a request, from its limits and usage figures: pure, so every
/// worker decides alike. The worker calls `check` for every request of a known token, then, when that
/// allows and the token has an RPM limit, `TokenRateWindows.admit`, which counts across workers.
public enum ClientTokenPolicy {
    /// Expiry, then model, then quota. `model` is the request body's `model` (nil when it has none);
    /// `modelReadable` is false when the body has a model that cannot be read; `tokensUsed` is the token's
    /// recorded prompt plus completion tokens; `now` is Unix ms.
    public static func check(
        _ limits: ClientTokenLimits, model: String?, modelReadable: Bool = true, tokensUsed: Int64, now: Int64
    ) -> ClientTokenDecision {
        if let expiresAt = limits.expiresAt, now >= expiresAt { return .expired }
        if limits.allowedModels != nil, !modelReadable { return .modelUnreadable }
        if let allowed = limits.allowedModels, let model, !allowed.contains(model) {
            // The answer names the model, cut short: a body may hold a name of megabytes.
            return .modelNotAllowed(String(model.prefix(200)))
        }
        if let quota = limits.tokenQuota, tokensUsed >= quota { return .quotaExceeded(quota: quota) }
        return .allow
    }

    /// The decision on a request of a token with `quota`, which `used` tokens so far while its requests in
    /// flight reserved `reserved` more: it starts only while both together stay below the quota, so
    /// parallel requests overshoot it by at most the last one admitted.
    public static func quota(used: Int64, reserved: Int64, quota: Int64) -> ClientTokenDecision {
        if used >= quota { return .quotaExceeded(quota: quota) }
        if used + reserved >= quota { return .quotaReserved(quota: quota) }
        return .allow
    }

    /// The decision for the `requests`-th request (counting this one) in the minute starting at
    /// `windowStart` (Unix ms), under `limit` requests per minute.
    public static func rate(requests: Int, limit: Int, windowStart: Int64, now: Int64) -> ClientTokenDecision {
        guard requests > limit else { return .allow }
        let remaining = max(0, windowStart + TokenRateWindows.windowMilliseconds - now)
        return .rateLimited(limit: limit, retryAfterSeconds: max(1, Int((remaining + 999) / 1000)))
    }
}
