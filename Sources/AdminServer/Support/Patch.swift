/// A field of an update body: left out (keep), `null` (clear), or a new value.
enum Patch<Value: Decodable & Sendable>: Sendable {
    /// Not in the body: keep what is stored.
    case absent
    /// `null`: clear it.
    case null
    /// A new value.
    case set(Value)

    /// The new stored value given the current one.
    func applied(to current: Value?) -> Value? {
        switch self {
        case .absent: return current
        case .null: return nil
        case .set(let value): return value
        }
    }

    /// The value when one was sent.
    var value: Value? {
        if case .set(let value) = self { return value }
        return nil
    }
}

extension KeyedDecodingContainer {
    /// `key` as a `Patch`: `.absent` when missing, `.null` for `null`, else the decoded value.
    func patch<Value: Decodable & Sendable>(_ type: Value.Type, forKey key: Key) throws -> Patch<Value> {
        guard contains(key) else { return .absent }
        if try decodeNil(forKey: key) { return .null }
        return .set(try decode(Value.self, forKey: key))
    }
}
