import HTTPServing
import Shared

/// Where the objects a request names bind it, decided from their records alone: to the key that holds them,
/// to a 404 when one belongs to another client token (as if it did not exist), or to a 409 when they live on
/// two keys. Ids the gateway never saw bind nothing (the object may predate it): such a request routes as
/// any other.
enum ObjectAffinity: Equatable {
    /// No known object is named.
    case unbound
    /// Every known object named is the token's own and lives on this object's key.
    case pinned(StoredObject)
    /// The object belongs to another client token.
    case hidden(StoredObject)
    /// The token's objects named live on two different keys.
    case split(StoredObject, StoredObject)

    /// The binding of a request of client token `token` naming `pathIDs` and `bodyIDs`; `lookup` finds a
    /// record by id.
    static func resolve(
        pathIDs: ArraySlice<Substring>, bodyIDs: [String], token: Int64,
        lookup: (Substring) -> StoredObject?
    ) -> ObjectAffinity {
        var pinned: StoredObject?
        func take(_ id: Substring) -> ObjectAffinity? {
            guard let object = lookup(id) else { return nil }
            guard object.tokenID == token else { return .hidden(object) }
            guard let first = pinned else {
                pinned = object
                return nil
            }
            return first.keyID == object.keyID ? nil : .split(first, object)
        }
        for id in pathIDs {
            if let decided = take(id) { return decided }
        }
        for id in bodyIDs {
            if let decided = take(id[...]) { return decided }
        }
        return pinned.map(ObjectAffinity.pinned) ?? .unbound
    }

    /// OpenAI's answer to an id it does not know, for `object`: the same status, shape and wording, so that
    /// another token learns nothing of it.
    static func notFound(_ object: StoredObject) -> ErrorBody {
        let id = object.id
        let message: String
        switch object.kind {
        case "file": message = "No such File object: \(id)"
        case "response": message = "Response with id '\(id)' not found."
        case "batch": message = "No batch found with id '\(id)'."
        case "vector_store": message = "No vector store found with id '\(id)'."
        case "assistant": message = "No assistant found with id '\(id)'."
        case "thread": message = "No thread found with id '\(id)'."
        case "upload": message = "Upload with id '\(id)' not found."
        case "conversation": message = "Conversation with id '\(id)' not found."
        case "fine_tuning.job": message = "Could not find fine-tune: \(id)"
        default: message = "No such object: \(id)"
        }
        return ErrorBody(message: message, type: "invalid_request_error", param: nil, code: nil)
    }

    /// The 409 for objects of one token that live on two keys: no one key can serve the request.
    static func splitMessage(_ first: StoredObject, _ second: StoredObject) -> String {
        "The request names \(first.id) and \(second.id), which were created through different upstream keys "
            + "(different OpenAI accounts or projects): no single key can reach both. Use objects created "
            + "through the same key in one request."
    }
}
