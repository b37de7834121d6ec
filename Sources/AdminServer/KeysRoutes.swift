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
        let key_value: String
        let status: String
        let status_reason: String?
        let usage_count: Int64
        let success_count: Int64
        let failure_count: Int64
        let prompt_tokens: Int64
        let completion_tokens: Int64
        let last_used: Date?
        let created_at: Date
        let updated_at: Date

        init(_ key: UpstreamKey) {
            id = key.id ?? 0
            name = key.name
            key_value = key.hint
            status = key.status.rawValue
            status_reason = key.statusReason
            usage_count = key.usageCount
            success_count = key.successCount
            failure_count = key.failureCount
            prompt_tokens = key.promptTokens
            completion_tokens = key.completionTokens
            last_used = key.lastUsed
            created_at = key.createdAt
            updated_at = key.updatedAt
        }
    }

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.get("keys") { _, _ -> [KeyView] in
            try await keys.list().map(KeyView.init)
        }
    }
}
