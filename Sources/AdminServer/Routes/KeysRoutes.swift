import Foundation
import Hummingbird
import Shared

/// `/api/keys`: upstream keys as operators see them, the value always masked.
struct KeysRoutes {
    let keys: KeyStore

    /// One key in the admin API.
    struct KeyView: ResponseEncodable {
        let id: Int64
        let name: String
        /// Masked, never the value.
        let keyValue: String
        let status: String
        let statusReason: String?
        let usageCount: Int64
        let successCount: Int64
        let failureCount: Int64
        let promptTokens: Int64
        let completionTokens: Int64
        let lastUsed: Date?
        let createdAt: Date
        let updatedAt: Date

        enum CodingKeys: String, CodingKey {
            case id, name, status, keyValue = "key_value", statusReason = "status_reason", usageCount = "usage_count"
            case successCount = "success_count", failureCount = "failure_count", promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens", lastUsed = "last_used", createdAt = "created_at"
            case updatedAt = "updated_at"
        }

        init(_ key: UpstreamKey) {
            id = key.id ?? 0
            name = key.name
            keyValue = key.hint
            status = key.status.rawValue
            statusReason = key.statusReason
            usageCount = key.usageCount
            successCount = key.successCount
            failureCount = key.failureCount
            promptTokens = key.promptTokens
            completionTokens = key.completionTokens
            lastUsed = key.lastUsed
            createdAt = key.createdAt
            updatedAt = key.updatedAt
        }
    }

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.get("keys") { _, _ -> [KeyView] in
            try await keys.list().map(KeyView.init)
        }
    }
}
