import Foundation
import GRDB

/// A token a client presents as `Authorization: Bearer …`; only its hash is stored.
public struct ClientToken: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "client_tokens"

    /// Row id, nil before insertion.
    public var id: Int64?
    /// Operator-given name.
    public var name: String
    /// SHA-256 hex of the token value.
    public var tokenHash: String
    /// Masked value for display.
    public var hint: String
    /// `active` or `revoked`.
    public var status: ClientTokenStatus
    /// Requests recorded for the token.
    public var requestCount: Int64
    /// Prompt tokens recorded.
    public var promptTokens: Int64
    /// Completion tokens recorded.
    public var completionTokens: Int64
    /// When the token was last used.
    public var lastUsed: Date?
    /// When the token was created.
    public var createdAt: Date
    /// When the token was revoked.
    public var revokedAt: Date?
    /// Model names the token may use; nil for any.
    public var allowedModels: [String]?
    /// Requests per minute allowed across all workers; nil for no limit.
    public var rpmLimit: Int?
    /// Prompt plus completion tokens the token may use in all; nil for no quota.
    public var tokenQuota: Int64?
    /// When the token stops being accepted (Unix ms); nil for never.
    public var expiresAt: Int64?
    /// The admin server's own token for its chat console: never listed or changed through the API.
    public var isInternal: Bool

    /// The response header the proxy adds for the internal token only: the id of the upstream key that served
    /// the request, so the console can say which key answered (other clients never see key ids).
    public static let servedKeyHeader = "x-openai-proxy-key-id"

    enum CodingKeys: String, CodingKey {
        case id, name, status, tokenHash = "token_hash", hint = "token_hint", requestCount = "request_count"
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", lastUsed = "last_used"
        case createdAt = "created_at", revokedAt = "revoked_at", allowedModels = "allowed_models"
        case rpmLimit = "rpm_limit", tokenQuota = "token_quota", expiresAt = "expires_at", isInternal = "internal"
    }

    /// The prefix of every client token, so leaked ones are recognisable.
    public static let valuePrefix = "sk-proxy-"

    /// A new record for a freshly generated `value`.
    public init(name: String, value: String, now: Date = Date()) {
        id = nil
        self.name = name
        tokenHash = SecretDigest.sha256Hex(value)
        hint = SecretDigest.hint(value)
        status = .active
        requestCount = 0
        promptTokens = 0
        completionTokens = 0
        lastUsed = nil
        createdAt = now
        revokedAt = nil
        allowedModels = nil
        rpmLimit = nil
        tokenQuota = nil
        expiresAt = nil
        isInternal = false
    }

    /// What the limits say, for `ClientTokenPolicy`.
    public var limits: ClientTokenLimits {
        ClientTokenLimits(
            allowedModels: allowedModels, rpmLimit: rpmLimit, tokenQuota: tokenQuota, expiresAt: expiresAt)
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

/// Whether a client token is accepted.
public enum ClientTokenStatus: String, Codable, Sendable, DatabaseValueConvertible {
    /// Accepted.
    case active
    /// Rejected with 401.
    case revoked
}
