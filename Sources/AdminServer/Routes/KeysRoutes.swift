import Foundation
import Hummingbird
import Shared

/// `/api/keys`: the upstream key pool — list, add, change name or status, remove, bulk import. Values go
/// in, never out: answers and audit entries show only the masked hint.
struct KeysRoutes {
    let services: AdminServices

    struct CreateBody: Decodable {
        let name: String
        let keyValue: String
        let status: String?
        enum CodingKeys: String, CodingKey { case name, status, keyValue = "key_value" }
    }

    struct UpdateBody: Decodable {
        let name: String?
        let status: String?
    }

    struct ImportBody: Decodable {
        let keys: [String]
        let namePrefix: String?
        enum CodingKeys: String, CodingKey { case keys, namePrefix = "name_prefix" }
    }

    struct ImportResult: Encodable {
        let added: Int
        let duplicate: Int
        let rejected: Int
        /// Positions (from 1) in `keys` of the values that are not a plausible key.
        let rejectedItems: [Int]
        enum CodingKeys: String, CodingKey { case added, duplicate, rejected, rejectedItems = "rejected_items" }
    }

    /// An operator-settable status (`active` or `disabled`), else 400.
    static func operatorStatus(_ text: String) throws -> KeyStatus {
        guard let status = KeyStatus(rawValue: text), KeyStatus.operatorSettable.contains(status) else {
            throw APIError.invalid("status", "must be active or disabled")
        }
        return status
    }

    /// The token details the upstreams reported per key; none yet on PostgreSQL, whose statistics reads are
    /// still to come (the keys themselves are listed and changed there all the same).
    private func tokenDetails(keyID: Int64? = nil) async throws -> [Int64: StatsRoutes.TokenDetails] {
        guard services.stores.sqlite != nil else { return [:] }
        return try await StatsRoutes.TokenDetails.perKey(services, keyID: keyID)
    }

    func register(on api: APIGroup) {
        api.on(.get, "keys") { _, _ in
            let keys = try await services.keys.list()
            let details = try await tokenDetails()
            return try JSONResponse.make(keys.map { KeyView($0, details: details[$0.id ?? 0] ?? .none) })
        }
        api.on(.get, "keys/{id}") { _, context in
            let id = try PathInput.id(context)
            guard let key = try await services.keys.key(id: id) else {
                throw APIError.notFound("No key with id \(id).")
            }
            let details = try await tokenDetails(keyID: id)
            return try JSONResponse.make(KeyView(key, details: details[id] ?? .none))
        }
        api.on(.post, "keys") { request, context in
            let body = try await JSONBody.decode(CreateBody.self, from: request, context: context)
            let status = try body.status.map(Self.operatorStatus) ?? .active
            switch try await services.keys.add(name: body.name, value: body.keyValue, status: status) {
            case .added(let key):
                try await services.audit.record(
                    services.auditEntry(
                        context, action: "key.create", target: "key:\(key.id ?? 0)",
                        detail: [
                            "name": .string(key.name), "key_hint": .string(key.hint),
                            "status": .string(status.rawValue),
                        ]))
                return try JSONResponse.make(KeyView(key), status: .created)
            case .duplicate(let existing):
                throw APIError.conflict(
                    "key_value is already stored as key \(existing).", param: "key_value", code: "duplicate_key")
            }
        }
        api.on(.put, "keys/{id}") { request, context in
            let id = try PathInput.id(context)
            let body = try await JSONBody.decode(UpdateBody.self, from: request, context: context)
            let name = try body.name.map { try KeyStore.validName($0) }
            let status = try body.status.map(Self.operatorStatus)
            var detail: [String: AuditValue] = [:]
            if let name { detail["name"] = .string(name) }
            if let status { detail["status"] = .string(status.rawValue) }
            let entry = services.auditEntry(context, action: "key.update", target: "key:\(id)", detail: detail)
            guard let key = try await services.keys.update(id: id, name: name, status: status, audit: entry) else {
                throw APIError.notFound("No key with id \(id).")
            }
            let details = try await tokenDetails(keyID: id)
            return try JSONResponse.make(KeyView(key, details: details[id] ?? .none))
        }
        api.on(.delete, "keys/{id}") { _, context in
            let id = try PathInput.id(context)
            let entry = services.auditEntry(context, action: "key.delete", target: "key:\(id)")
            guard try await services.keys.remove(id: id, audit: entry) else {
                throw APIError.notFound("No key with id \(id).")
            }
            return try JSONResponse.make(Acknowledgement(result: "deleted", id: String(id)))
        }
        api.on(.post, "keys/import") { request, context in
            let body = try await JSONBody.decode(ImportBody.self, from: request, context: context)
            guard (1...10_000).contains(body.keys.count) else {
                throw APIError.invalid("keys", "must hold 1 to 10000 keys")
            }
            let prefix = try KeyStore.validName(body.namePrefix ?? "imported")
            // One line per item: an item that itself spans lines or is blank or a comment is rejected whole.
            let lines = body.keys.map { item -> String in
                let trimmed = item.trimmingCharacters(in: .whitespaces)
                return trimmed.contains(where: \.isNewline) || trimmed.isEmpty || trimmed.hasPrefix("#")
                    ? "\u{1}" : trimmed
            }
            let summary = try await services.keys.importKeys(lines.joined(separator: "\n"), namePrefix: prefix)
            try await services.audit.record(
                services.auditEntry(
                    context, action: "key.import", target: nil,
                    detail: [
                        "added": .int(Int64(summary.added)), "duplicate": .int(Int64(summary.duplicates)),
                        "rejected": .int(Int64(summary.rejected.count)),
                    ]))
            return try JSONResponse.make(
                ImportResult(
                    added: summary.added, duplicate: summary.duplicates, rejected: summary.rejected.count,
                    rejectedItems: summary.rejected))
        }
    }
}
