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
    /// `active` or `disabled`.
    public var status: KeyStatus
    /// Why the key is in its status, when known.
    public var statusReason: String?
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
        case statusReason = "status_reason", pickCount = "pick_count", usageCount = "usage_count"
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

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

/// Whether an upstream key is in rotation.
public enum KeyStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// Used for requests.
    case active
    /// Turned off by an operator: never used.
    case disabled
}
