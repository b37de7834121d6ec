import HTTPServing
import Shared

/// What a socket's `response.create` messages may name of the gateway's objects: the socket's key is chosen
/// once, at the upgrade, so an object of another client token is refused as if it did not exist, and one the
/// socket's key cannot reach (created through another key) is refused with why, rather than sent to an
/// account that answers "not found".
struct WebSocketObjectCheck {
    /// The socket's client token.
    let tokenID: Int64
    /// The key the socket was opened with.
    let keyID: Int64
    /// Finds a record by id (the worker's `ObjectDirectory`).
    let lookup: (Substring) -> StoredObject?

    /// Client event types whose bodies may name stored objects (`previous_response_id`, `conversation`,
    /// tools' `vector_store_ids`, input files …).
    static let objectNamingTypes: Set<String> = ["response.create"]

    /// The `error` event's body for a message naming `ids`; nil when the socket's key may serve it.
    func refusal(_ ids: [String]) -> ErrorBody? {
        switch ObjectAffinity.resolve(pathIDs: [], bodyIDs: ids, token: tokenID, lookup: lookup) {
        case .unbound:
            return nil
        case .hidden(let object):
            return ObjectAffinity.notFound(object)
        case .split(let first, let second):
            return ErrorBody(
                message: ObjectAffinity.splitMessage(first, second), type: "invalid_request_error",
                code: "objects_on_different_keys")
        case .pinned(let object):
            guard object.keyID != keyID else { return nil }
            return ErrorBody(
                message: "\(object.id) was created through another upstream key (another OpenAI account or project) "
                    + "than the one this socket was opened with, which cannot reach it. Use it over the HTTP API, "
                    + "which sends each request to the key that holds its objects.",
                type: "invalid_request_error", code: "object_on_other_key")
        }
    }
}
