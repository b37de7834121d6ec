/// An OpenAI object (file, batch, stored response …) created through the gateway: the key whose account holds
/// it, and the client token that created it and alone may name it.
public struct StoredObject: Sendable, Equatable, Hashable {
    /// OpenAI's id (`file-…`, `batch_…`, `resp_…`).
    public var id: String
    /// The answer's `object` (`file`, `batch`, `response`, `vector_store.file` …).
    public var kind: String
    /// The upstream key that created it; its row may be gone (a removed key's objects are still known).
    public var keyID: Int64
    /// The client token that created it.
    public var tokenID: Int64
    /// When it was created, in Unix milliseconds.
    public var createdAt: Int64
    /// When its record is dropped, in Unix milliseconds (`OPENAI_PROXY_OBJECT_RETENTION_DAYS` after creation).
    public var expiresAt: Int64

    /// A record with every field given.
    public init(id: String, kind: String, keyID: Int64, tokenID: Int64, createdAt: Int64, expiresAt: Int64) {
        self.id = id
        self.kind = kind
        self.keyID = keyID
        self.tokenID = tokenID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// What a worker learned about an object from an answer, on its way to the `objects` table.
public enum ObjectChange: Sendable, Equatable {
    /// A create call's answer named a new object.
    case created(StoredObject)
    /// A 2xx `DELETE` of the object.
    case deleted(id: String)
}
