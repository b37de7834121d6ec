import Foundation
import Hummingbird
import Shared

/// `/api/objects`: the OpenAI objects created through the gateway — which key holds each and which client token
/// owns it — with counts per key and token, and the operator's changes: revoke one record, revoke or reassign
/// every record of a key (a removed key's objects, moved to a replacement key of the same OpenAI account).
struct ObjectsRoutes {
    let services: AdminServices

    struct ReassignBody: Decodable {
        let fromKeyID: Int64
        let toKeyID: Int64
        enum CodingKeys: String, CodingKey { case fromKeyID = "from_key_id", toKeyID = "to_key_id" }
    }

    struct RevokeBody: Decodable {
        let keyID: Int64
        enum CodingKeys: String, CodingKey { case keyID = "key_id" }
    }

    struct Reassigned: Encodable {
        let moved: Int
        let fromKeyID: Int64
        let toKeyID: Int64
        enum CodingKeys: String, CodingKey { case moved, fromKeyID = "from_key_id", toKeyID = "to_key_id" }
    }

    struct Revoked: Encodable {
        let revoked: Int
        let keyID: Int64
        enum CodingKeys: String, CodingKey { case revoked, keyID = "key_id" }
    }

    func register(on api: APIGroup) {
        api.on(.get, "objects") { request, _ in
            let query = QueryInput(request)
            let limit = try query.int("limit", default: 50, in: 1...500)
            let offset = try query.int("offset", default: 0, in: 0...10_000_000)
            let filter = ObjectFilter(
                tokenID: try query.id("token_id"), keyID: try query.id("key_id"), kind: try query.string("kind"))
            let (objects, total) = try await services.objects.page(filter, limit: limit, offset: offset)
            let names = try await ObjectNames.load(services)
            return try JSONResponse.make(
                UsageRoutes.Page(
                    data: objects.map { ObjectView($0, names: names) }, total: total, limit: limit, offset: offset))
        }
        api.on(.get, "objects/summary") { _, _ in
            let counts = try await services.objects.counts()
            return try JSONResponse.make(ObjectSummary(counts, names: try await ObjectNames.load(services)))
        }
        api.on(.delete, "objects/{object_id}") { _, context in
            let id = try PathInput.string(context, "object_id")
            guard let revoked = try await services.objects.revoke(id: id, now: services.now()) else {
                throw APIError.notFound("No object with id \(id).", param: "object_id")
            }
            try await services.audit.record(
                services.auditEntry(
                    context, action: "object.revoke", target: "object:\(id)",
                    detail: [
                        "kind": .string(revoked.kind), "key_id": .int(revoked.keyID),
                        "token_id": .int(revoked.tokenID),
                    ]))
            return try JSONResponse.make(Acknowledgement(result: "revoked", id: id))
        }
        api.on(.post, "objects/reassign") { request, context in
            let body = try await JSONBody.decode(ReassignBody.self, from: request, context: context)
            guard body.fromKeyID != body.toKeyID else {
                throw APIError.invalid("to_key_id", "must be another key than from_key_id")
            }
            guard try await services.keys.key(id: body.toKeyID) != nil else {
                throw APIError.notFound("No key with id \(body.toKeyID).", param: "to_key_id")
            }
            let moved = try await services.objects.reassign(
                from: body.fromKeyID, to: body.toKeyID, now: services.now())
            try await services.audit.record(
                services.auditEntry(
                    context, action: "object.reassign", target: "key:\(body.fromKeyID)",
                    detail: ["to_key_id": .int(body.toKeyID), "moved": .int(Int64(moved))]))
            return try JSONResponse.make(Reassigned(moved: moved, fromKeyID: body.fromKeyID, toKeyID: body.toKeyID))
        }
        api.on(.post, "objects/revoke") { request, context in
            let body = try await JSONBody.decode(RevokeBody.self, from: request, context: context)
            let revoked = try await services.objects.revoke(keyID: body.keyID, now: services.now())
            try await services.audit.record(
                services.auditEntry(
                    context, action: "object.revoke_key", target: "key:\(body.keyID)",
                    detail: ["revoked": .int(Int64(revoked))]))
            return try JSONResponse.make(Revoked(revoked: revoked, keyID: body.keyID))
        }
    }
}
