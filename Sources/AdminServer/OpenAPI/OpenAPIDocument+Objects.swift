/// The `/api/objects` paths of the OpenAPI document.
extension OpenAPIDocument {
    private static let keyID: JSONValue = ["type": "integer", "minimum": 1]

    /// Listing, counting, revoking and reassigning the records of objects created through the gateway.
    static let objectPaths: [String: JSONValue] = [
        "/api/objects": [
            "get": op(
                "Objects created through the gateway (key that holds each, token that owns it), newest first.",
                parameters: [
                    limit, offset, query("token_id", keyID, "Client token."), query("key_id", keyID, "Upstream key."),
                    query("kind", ["type": "string", "minLength": 1, "maxLength": 200], "Such as file or batch."),
                ], ok: (200, S.ref("ObjectPage")))
        ],
        "/api/objects/summary": [
            "get": op(
                "How many objects each key holds (removed keys too) and each token owns.",
                ok: (200, S.ref("ObjectSummary")))
        ],
        "/api/objects/{object_id}": [
            "delete": op(
                "Revoke one record: workers forget it within 1 s, and its id is routed as one never seen.",
                parameters: [path("object_id", ["type": "string", "minLength": 1, "maxLength": 500])],
                ok: (200, S.ref("Acknowledgement")), errors: [404])
        ],
        "/api/objects/reassign": [
            "post": op(
                "Move every record of a key (a removed or invalid one) to another key of the same OpenAI account; "
                    + "workers route to it within 1 s.",
                body: S.object(["from_key_id": keyID, "to_key_id": keyID], required: ["from_key_id", "to_key_id"]),
                ok: (200, S.ref("ObjectsReassigned")), errors: [404])
        ],
        "/api/objects/revoke": [
            "post": op(
                "Revoke every record of a key.", body: S.object(["key_id": keyID], required: ["key_id"]),
                ok: (200, S.ref("ObjectsRevoked")))
        ],
    ]
}
