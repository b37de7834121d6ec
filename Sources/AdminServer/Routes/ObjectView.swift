import Foundation
import Shared

/// The names of the keys and client tokens that exist, to show beside object records' ids.
struct ObjectNames {
    /// Key names by id; a removed key is absent.
    let keys: [Int64: String]
    /// Token names by id.
    let tokens: [Int64: String]

    /// The names as stored now.
    static func load(_ services: AdminServices) async throws -> ObjectNames {
        var keys: [Int64: String] = [:]
        for key in try await services.keys.list() { if let id = key.id { keys[id] = key.name } }
        var tokens: [Int64: String] = [:]
        for token in try await services.tokens.list() { if let id = token.id { tokens[id] = token.name } }
        return ObjectNames(keys: keys, tokens: tokens)
    }
}

/// One object record in the admin API; `key_name` is null when its key was removed.
struct ObjectView: Encodable {
    let objectID: String
    let kind: String
    let keyID: Int64
    @NullEncoded var keyName: String?
    let keyRemoved: Bool
    let tokenID: Int64
    @NullEncoded var tokenName: String?
    let createdAt: String
    let expiresAt: String

    enum CodingKeys: String, CodingKey {
        case kind, objectID = "object_id", keyID = "key_id", keyName = "key_name", keyRemoved = "key_removed"
        case tokenID = "token_id", tokenName = "token_name", createdAt = "created_at", expiresAt = "expires_at"
    }

    init(_ object: StoredObject, names: ObjectNames) {
        objectID = object.id
        kind = object.kind
        keyID = object.keyID
        keyName = names.keys[object.keyID]
        keyRemoved = names.keys[object.keyID] == nil
        tokenID = object.tokenID
        tokenName = names.tokens[object.tokenID]
        createdAt = ISOTime.format(object.createdAt)
        expiresAt = ISOTime.format(object.expiresAt)
    }
}

/// `GET /api/objects/summary`: how many records each key holds (removed keys included) and each token owns.
struct ObjectSummary: Encodable {
    /// One key's count.
    struct KeyCount: Encodable {
        let keyID: Int64
        @NullEncoded var keyName: String?
        let keyRemoved: Bool
        let count: Int
        enum CodingKeys: String, CodingKey {
            case count, keyID = "key_id", keyName = "key_name", keyRemoved = "key_removed"
        }
    }

    /// One token's count.
    struct TokenCount: Encodable {
        let tokenID: Int64
        @NullEncoded var tokenName: String?
        let count: Int
        enum CodingKeys: String, CodingKey { case count, tokenID = "token_id", tokenName = "token_name" }
    }

    let total: Int
    let keys: [KeyCount]
    let tokens: [TokenCount]

    init(_ counts: ObjectCounts, names: ObjectNames) {
        total = counts.byKey.values.reduce(0, +)
        keys = counts.byKey.sorted { $0.key < $1.key }.map { id, count in
            KeyCount(keyID: id, keyName: names.keys[id], keyRemoved: names.keys[id] == nil, count: count)
        }
        tokens = counts.byToken.sorted { $0.key < $1.key }.map { id, count in
            TokenCount(tokenID: id, tokenName: names.tokens[id], count: count)
        }
    }
}
