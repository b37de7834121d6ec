import Foundation
import Hummingbird
import Shared

/// `/api/tokens`: the tokens clients present to the proxy — create (the value is answered once), list,
/// change name and limits, revoke. The proxy enforces the limits (`ClientTokenPolicy`).
struct TokensRoutes {
    let services: AdminServices

    /// One client token in the admin API; `token` is set only in the answer to its creation.
    struct TokenView: Encodable {
        let id: Int64
        let name: String
        let tokenHint: String
        let status: String
        @NullEncoded var allowedModels: [String]?
        @NullEncoded var rpmLimit: Int?
        @NullEncoded var tokenQuota: Int64?
        let tokensUsed: Int64
        @NullEncoded var expiresAt: String?
        let expired: Bool
        let requestCount: Int64
        let promptTokens: Int64
        let completionTokens: Int64
        @NullEncoded var lastUsed: Date?
        let createdAt: Date
        @NullEncoded var revokedAt: Date?
        @NullEncoded var token: String?

        enum CodingKeys: String, CodingKey {
            case id, name, status, expired, token, tokenHint = "token_hint", allowedModels = "allowed_models"
            case rpmLimit = "rpm_limit", tokenQuota = "token_quota", tokensUsed = "tokens_used"
            case expiresAt = "expires_at", requestCount = "request_count", promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens", lastUsed = "last_used", createdAt = "created_at"
            case revokedAt = "revoked_at"
        }

        init(_ token: ClientToken, now: Int64, value: String? = nil) {
            id = token.id ?? 0
            name = token.name
            tokenHint = token.hint
            status = token.status.rawValue
            allowedModels = token.allowedModels
            rpmLimit = token.rpmLimit
            tokenQuota = token.tokenQuota
            tokensUsed = token.promptTokens + token.completionTokens
            expiresAt = token.expiresAt.map(ISOTime.format)
            expired = token.expiresAt.map { $0 <= now } ?? false
            requestCount = token.requestCount
            promptTokens = token.promptTokens
            completionTokens = token.completionTokens
            lastUsed = token.lastUsed
            createdAt = token.createdAt
            revokedAt = token.revokedAt
            self.token = value
        }
    }

    /// The limit fields of a create or update body; each may be left out, `null` (no limit) or a value.
    struct LimitFields: Decodable {
        let name: Patch<String>
        let allowedModels: Patch<[String]>
        let rpmLimit: Patch<Int>
        let tokenQuota: Patch<Int64>
        let expiresAt: Patch<String>

        enum CodingKeys: String, CodingKey {
            case name, allowedModels = "allowed_models", rpmLimit = "rpm_limit", tokenQuota = "token_quota"
            case expiresAt = "expires_at"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.patch(String.self, forKey: .name)
            allowedModels = try container.patch([String].self, forKey: .allowedModels)
            rpmLimit = try container.patch(Int.self, forKey: .rpmLimit)
            tokenQuota = try container.patch(Int64.self, forKey: .tokenQuota)
            expiresAt = try container.patch(String.self, forKey: .expiresAt)
        }
    }

    /// `fields`' limits validated and applied over `current`.
    private func limits(_ fields: LimitFields, over current: ClientTokenLimits) async throws -> ClientTokenLimits {
        var limits = current
        limits.allowedModels = fields.allowedModels.applied(to: current.allowedModels)
        if let models = fields.allowedModels.value {
            guard (1...500).contains(models.count) else {
                throw APIError.invalid("allowed_models", "must name 1 to 500 models, or be null for any model")
            }
            for name in models { _ = try ModelStore.validName(name, field: "allowed_models") }
            if let unknown = try await services.models.unknown(models).first {
                throw APIError.invalid("allowed_models", "names an unknown model: \(unknown)")
            }
        }
        limits.rpmLimit =
            try fields.rpmLimit.value.map(TokenStore.validRPMLimit) ?? fields.rpmLimit.applied(to: current.rpmLimit)
        limits.tokenQuota =
            try fields.tokenQuota.value.map(TokenStore.validTokenQuota)
            ?? fields.tokenQuota.applied(to: current.tokenQuota)
        if let text = fields.expiresAt.value {
            guard let ms = ISOTime.parse(text) else {
                throw APIError.invalid("expires_at", "must be an ISO 8601 date-time such as 2030-01-31T00:00:00Z")
            }
            guard ms > services.now() else { throw APIError.invalid("expires_at", "must be in the future") }
            limits.expiresAt = ms
        } else if case .null = fields.expiresAt {
            limits.expiresAt = nil
        }
        return limits
    }

    private static func detail(_ token: ClientToken) -> [String: AuditValue] {
        [
            "name": .string(token.name), "allowed_models": token.allowedModels.map(AuditValue.strings) ?? .null,
            "rpm_limit": token.rpmLimit.map { .int(Int64($0)) } ?? .null, "token_quota": token.tokenQuota.audit,
            "expires_at": token.expiresAt.audit,
        ]
    }

    func register(on api: APIGroup) {
        api.on(.get, "tokens") { _, _ in
            let now = services.now()
            return try JSONResponse.make(try await services.tokens.listManaged().map { TokenView($0, now: now) })
        }
        api.on(.get, "tokens/{id}") { _, context in
            let id = try PathInput.id(context)
            guard let token = try await services.tokens.managed(id: id) else { throw Self.notFound(id) }
            return try JSONResponse.make(TokenView(token, now: services.now()))
        }
        api.on(.post, "tokens") { request, context in
            let fields = try await JSONBody.decode(LimitFields.self, from: request, context: context)
            guard let name = fields.name.value else { throw APIError.invalid("name", "is required") }
            let limits = try await limits(fields, over: ClientTokenLimits())
            var preview = ClientToken(name: try KeyStore.validName(name), value: "")
            preview.apply(limits)
            let (token, value) = try await services.tokens.create(
                name: name, limits: limits,
                audit: services.auditEntry(context, action: "token.create", target: nil, detail: Self.detail(preview)))
            return try JSONResponse.make(TokenView(token, now: services.now(), value: value), status: .created)
        }
        api.on(.put, "tokens/{id}") { request, context in
            let id = try PathInput.id(context)
            let fields = try await JSONBody.decode(LimitFields.self, from: request, context: context)
            guard let current = try await services.tokens.managed(id: id) else { throw Self.notFound(id) }
            let name: String? =
                switch fields.name {
                case .absent: nil
                case .null: throw APIError.invalid("name", "must not be null")
                case .set(let text): try KeyStore.validName(text)
                }
            let limits = try await limits(fields, over: current.limits)
            var changed = current
            if let name { changed.name = name }
            changed.apply(limits)
            let entry = services.auditEntry(
                context, action: "token.update", target: "token:\(id)", detail: Self.detail(changed))
            guard
                let token = try await services.tokens.update(
                    id: id, audit: entry,
                    { [changed] token in
                        token.name = changed.name
                        token.apply(changed.limits)
                    })
            else { throw Self.notFound(id) }
            return try JSONResponse.make(TokenView(token, now: services.now()))
        }
        api.on(.delete, "tokens/{id}") { _, context in
            let id = try PathInput.id(context)
            let entry = services.auditEntry(context, action: "token.revoke", target: "token:\(id)")
            switch try await services.tokens.revoke(id: id, audit: entry) {
            case .revoked, .alreadyRevoked:
                return try JSONResponse.make(Acknowledgement(result: "revoked", id: String(id)))
            case .notFound:
                throw Self.notFound(id)
            }
        }
    }

    private static func notFound(_ id: Int64) -> Error {
        APIError.notFound("No client token with id \(id).")
    }
}
