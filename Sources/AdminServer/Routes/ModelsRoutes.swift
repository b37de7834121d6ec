import AsyncHTTPClient
import Foundation
import HTTPServing
import Hummingbird
import NIOCore
import Shared

/// `/api/models`: the models the gateway offers (the proxy's `GET /v1/models` answers from this table) —
/// list, refresh from the upstream (`POST /api/models/refresh`; the older `GET ?refresh=true` for bearer
/// scripts only), add, change, enable or disable, remove.
struct ModelsRoutes {
    let services: AdminServices

    /// One model in the admin API.
    struct ModelView: Encodable {
        let modelName: String
        let description: String
        let capabilities: [String]
        let enabled: Bool
        let source: String
        let createdAt: Date
        let updatedAt: Date

        enum CodingKeys: String, CodingKey {
            case description, capabilities, enabled, source, modelName = "model_name", createdAt = "created_at"
            case updatedAt = "updated_at"
        }

        init(_ model: ModelEntry) {
            modelName = model.name
            description = model.description
            capabilities = model.capabilityList
            enabled = model.enabled
            source = model.source
            createdAt = model.createdAt
            updatedAt = model.updatedAt
        }
    }

    struct CreateBody: Decodable {
        let modelName: String
        let description: String?
        let capabilities: [String]?
        let enabled: Bool?
        enum CodingKeys: String, CodingKey {
            case description, capabilities, enabled, modelName = "model_name"
        }
    }

    struct UpdateBody: Decodable {
        let description: String?
        let capabilities: [String]?
        let enabled: Bool?
    }

    func register(on api: APIGroup) {
        api.on(.get, "models") { request, context in
            if try QueryInput(request).bool("refresh", default: false) {
                // A GET carries no CSRF token: a cookie session must use the POST, so a cross-site page
                // cannot make the console's browser change the models table.
                guard context.identity == .adminToken else { throw Self.refreshNeedsPost }
                try await refresh(context)
            }
            return try JSONResponse.make(try await services.models.list().map(ModelView.init))
        }
        api.on(.post, "models/refresh") { _, context in
            try await refresh(context)
            return try JSONResponse.make(try await services.models.list().map(ModelView.init))
        }
        api.on(.get, "models/{model_name}") { _, context in
            let name = try PathInput.string(context, "model_name")
            guard let model = try await services.models.get(name) else { throw Self.notFound(name) }
            return try JSONResponse.make(ModelView(model))
        }
        api.on(.post, "models") { request, context in
            let body = try await JSONBody.decode(CreateBody.self, from: request, context: context)
            let model = ModelEntry(
                name: try ModelStore.validName(body.modelName),
                description: try ModelStore.validDescription(body.description ?? ""),
                capabilities: try ModelStore.validCapabilities(body.capabilities ?? []), enabled: body.enabled ?? true)
            do {
                try await services.models.create(
                    model,
                    audit: services.auditEntry(
                        context, action: "model.create", target: "model:\(model.name)",
                        detail: ["enabled": .bool(model.enabled), "capabilities": .strings(model.capabilityList)]))
            } catch ModelStore.ChangeError.duplicate {
                throw APIError.conflict(
                    "model_name \(model.name) exists already.", param: "model_name", code: "duplicate_model")
            }
            return try JSONResponse.make(ModelView(model), status: .created)
        }
        api.on(.put, "models/{model_name}") { request, context in
            let name = try PathInput.string(context, "model_name")
            let body = try await JSONBody.decode(UpdateBody.self, from: request, context: context)
            let description = try body.description.map(ModelStore.validDescription)
            let capabilities = try body.capabilities.map(ModelStore.validCapabilities)
            var detail: [String: AuditValue] = [:]
            if let enabled = body.enabled { detail["enabled"] = .bool(enabled) }
            if let capabilities { detail["capabilities"] = .strings(capabilities) }
            if description != nil { detail["description"] = .string("changed") }
            return try await change(name, context: context, action: "model.update", detail: detail) { model in
                if let description { model.description = description }
                if let capabilities { model.capabilities = capabilities.joined(separator: ",") }
                if let enabled = body.enabled { model.enabled = enabled }
            }
        }
        for (verb, enabled) in [("enable", true), ("disable", false)] {
            api.on(.post, "models/{model_name}/\(verb)") { _, context in
                let name = try PathInput.string(context, "model_name")
                return try await change(name, context: context, action: "model.\(verb)", detail: [:]) {
                    $0.enabled = enabled
                }
            }
        }
        api.on(.delete, "models/{model_name}") { _, context in
            let name = try PathInput.string(context, "model_name")
            let entry = services.auditEntry(context, action: "model.delete", target: "model:\(name)")
            guard try await services.models.remove(name, audit: entry) else { throw Self.notFound(name) }
            return try JSONResponse.make(Acknowledgement(result: "deleted", id: name))
        }
    }

    private func change(
        _ name: String, context: AdminRequestContext, action: String, detail: [String: AuditValue],
        _ body: @escaping @Sendable (inout ModelEntry) -> Void
    ) async throws -> Response {
        let entry = services.auditEntry(context, action: action, target: "model:\(name)", detail: detail)
        guard let model = try await services.models.update(name, audit: entry, body) else { throw Self.notFound(name) }
        return try JSONResponse.make(ModelView(model))
    }

    /// Adds the upstream's models and records the refresh in the audit log.
    private func refresh(_ context: AdminRequestContext) async throws {
        let added = try await refreshFromUpstream()
        try await services.audit.record(
            services.auditEntry(context, action: "model.refresh", target: nil, detail: ["added": .int(Int64(added))]))
    }

    /// `GET /api/models?refresh=true` from a cookie session.
    static let refreshNeedsPost = ErrorResponse(
        .forbidden,
        ErrorBody(
            message: "From a console session, refresh with POST /api/models/refresh and its X-CSRF-Token header.",
            type: "permission_error", code: "refresh_requires_post"))

    private static func notFound(_ name: String) -> Error {
        APIError.notFound("No model named \(name).", param: "model_name")
    }

    private struct UpstreamList: Decodable {
        struct Item: Decodable { let id: String }
        let data: [Item]
    }

    /// Fetches the upstream's `/models` with the first active key that opens and merges the ids in;
    /// returns how many were added.
    private func refreshFromUpstream() async throws -> Int {
        let keys = try await services.keys.list().filter { $0.status == .active }
        guard let value = keys.lazy.compactMap({ try? services.box.open($0.sealedValue) }).first else {
            throw APIError.conflict(
                "No active upstream key to ask the upstream for its models.", param: nil, code: "no_available_key")
        }
        let upstream = services.configuration.upstreamBaseURL
        var request = HTTPClientRequest(url: upstream.url(forPath: "/models"))
        request.headers.add(name: "authorization", value: "Bearer \(value)")
        let body: ByteBuffer
        let status: UInt
        do {
            let response = try await AdminHTTPClient.shared.execute(request, timeout: .seconds(30))
            status = response.status.code
            body = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw APIError.unavailable(
                .badGateway, "The upstream \(upstream.host) could not be reached for its models.",
                code: "upstream_unreachable")
        }
        // A refusal (4xx: the key, the path) is the operator's to fix; anything else is the upstream failing.
        if (400..<500).contains(status) {
            throw APIError.conflict(
                "The upstream refused GET /models with status \(status).", param: nil, code: "upstream_refused")
        }
        guard status == 200, let list = try? JSONDecoder().decode(UpstreamList.self, from: Data(body.readableBytesView))
        else {
            throw APIError.unavailable(
                .badGateway, "The upstream answered GET /models with status \(status) and no model list.",
                code: "upstream_error")
        }
        let names = list.data.map(\.id).filter { (try? ModelStore.validName($0)) != nil }
        return try await services.models.mergeUpstream(names, audit: nil)
    }
}
