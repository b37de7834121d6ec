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

    enum CodingKeys: String, CodingKey {
        case id, name, status, tokenHash = "token_hash", hint = "token_hint", requestCount = "request_count"
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", lastUsed = "last_used"
        case createdAt = "created_at", revokedAt = "revoked_at"
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
