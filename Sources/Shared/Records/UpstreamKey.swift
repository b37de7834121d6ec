import Foundation
import GRDB

/// An upstream API key as stored: the value sealed, a masked hint for display, status and counters.
public struct UpstreamKey: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "keys"

    /// Row id, nil before insertion.
    public var id: Int64?
    /// Operator-given name.
    public var name: String
    /// The value sealed by `SecretBox`; never the plaintext.
    public var sealedValue: String
    /// SHA-256 of the plaintext, unique: finds duplicates without decrypting.
    public var fingerprint: String
    /// Masked value for display, such as `sk-…wxyz`.
    public var hint: String
    /// Where the key stands in the health state machine (`KeyHealthPolicy`).
    public var status: KeyStatus
    /// Why the key is in its status, when known.
    public var statusReason: String?
    /// The upstream HTTP status that moved the key to its status, if one did.
    public var statusCode: Int?
    /// When the key entered its status (Unix ms).
    public var statusSince: Int64?
    /// When a cooling key returns by itself, or a quota_exhausted / invalid key is probed next (Unix ms).
    public var nextProbeAt: Int64?
    /// Transient failures (5xx, connect error, timeout) in a row; a success resets it.
    public var consecutiveFailures: Int
    /// How many cool-downs in a row without a success: the backoff doubles with each.
    public var coolingLevel: Int
    /// The upstream's last `x-ratelimit-remaining-requests` for the key.
    public var rateLimitRemainingRequests: Int64?
    /// The upstream's last `x-ratelimit-remaining-tokens` for the key.
    public var rateLimitRemainingTokens: Int64?
    /// When the request budget resets (Unix ms), from `x-ratelimit-reset-requests`.
    public var rateLimitResetRequestsAt: Int64?
    /// When the token budget resets (Unix ms), from `x-ratelimit-reset-tokens`.
    public var rateLimitResetTokensAt: Int64?
    /// When the rate-limit figures were last seen (Unix ms).
    public var rateLimitUpdatedAt: Int64?
    /// Model ids the key reached at its last probe; nil while unknown.
    public var models: [String]?
    /// When `models` was learned (Unix ms).
    public var modelsCheckedAt: Int64?
    /// When the key was last probed (Unix ms).
    public var lastProbeAt: Int64?
    /// The HTTP status of the last probe (0: no answer).
    public var lastProbeStatus: Int?
    /// How long the last probe took.
    public var lastProbeLatencyMs: Double?
    /// What went wrong in the last probe, if anything.
    public var lastProbeError: String?
    /// Times a least_used selection chose the key.
    public var pickCount: Int64
    /// Requests the collector recorded for the key.
    public var usageCount: Int64
    /// Requests that ended with a status below 400.
    public var successCount: Int64
    /// Requests that failed.
    public var failureCount: Int64
    /// Prompt tokens recorded.
    public var promptTokens: Int64
    /// Completion tokens recorded.
    public var completionTokens: Int64
    /// When the key last served a request.
    public var lastUsed: Date?
    /// When the key was added.
    public var createdAt: Date
    /// When the key last changed.
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, name, status, hint = "key_hint", sealedValue = "key_value", fingerprint = "key_fingerprint"
        case statusReason = "status_reason", statusCode = "status_code", statusSince = "status_since"
        case nextProbeAt = "next_probe_at", consecutiveFailures = "consecutive_failures", coolingLevel = "cooling_level"
        case rateLimitRemainingRequests = "rl_remaining_requests", rateLimitRemainingTokens = "rl_remaining_tokens"
        case rateLimitResetRequestsAt = "rl_reset_requests_at", rateLimitResetTokensAt = "rl_reset_tokens_at"
        case rateLimitUpdatedAt = "rl_updated_at", models, modelsCheckedAt = "models_checked_at"
        case lastProbeAt = "last_probe_at", lastProbeStatus = "last_probe_status"
        case lastProbeLatencyMs = "last_probe_latency_ms", lastProbeError = "last_probe_error"
        case pickCount = "pick_count", usageCount = "usage_count"
        case successCount = "success_count", failureCount = "failure_count"
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens"
        case lastUsed = "last_used", createdAt = "created_at", updatedAt = "updated_at"
    }

    /// A new key record for `value`, sealed with `box`.
    public init(name: String, value: String, status: KeyStatus, box: SecretBox, now: Date = Date()) {
        id = nil
        self.name = name
        sealedValue = box.seal(value)
        fingerprint = SecretDigest.sha256Hex(value)
        hint = SecretDigest.hint(value)
        self.status = status
        statusReason = nil
        statusCode = nil
        statusSince = Int64((now.timeIntervalSince1970 * 1000).rounded())
        nextProbeAt = nil
        consecutiveFailures = 0
        coolingLevel = 0
        rateLimitRemainingRequests = nil
        rateLimitRemainingTokens = nil
        rateLimitResetRequestsAt = nil
        rateLimitResetTokensAt = nil
        rateLimitUpdatedAt = nil
        models = nil
        modelsCheckedAt = nil
        lastProbeAt = nil
        lastProbeStatus = nil
        lastProbeLatencyMs = nil
        lastProbeError = nil
        pickCount = 0
        usageCount = 0
        successCount = 0
        failureCount = 0
        promptTokens = 0
        completionTokens = 0
        lastUsed = nil
        createdAt = now
        updatedAt = now
    }

    /// The operator set `status` at `ms`: the health it had (reason, code, probe, failures, cooling) is reset.
    public mutating func setByOperator(_ status: KeyStatus, at ms: Int64) {
        self.status = status
        statusReason = "set by operator"
        statusCode = nil
        statusSince = ms
        nextProbeAt = nil
        consecutiveFailures = 0
        coolingLevel = 0
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

/// Where an upstream key stands; see `KeyHealthPolicy` for what moves it.
public enum KeyStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// In rotation.
    case active
    /// Rate limited or failing: out of rotation until `next_probe_at`, then back by itself.
    case cooling
    /// Out of credit (429 `insufficient_quota`): out of rotation, probed hourly.
    case quotaExhausted = "quota_exhausted"
    /// Refused by the upstream (401, or 403 for the key): out of rotation, probed every 6 h.
    case invalid
    /// Turned off by an operator: never used, never probed.
    case disabled

    /// The states an operator may set a key to.
    public static let operatorSettable: [KeyStatus] = [.active, .disabled]
}
