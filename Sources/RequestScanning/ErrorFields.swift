/// The `error` object of an OpenAI error body: `{"error":{"message":…,"type":…,"code":…}}`.
public struct ErrorFields: Sendable, Equatable {
    public var message: String?
    public var type: String?
    public var code: String?

    /// The fields of `body`, as far as it reads; members that are not strings are nil.
    public init(_ body: UnsafeRawBufferPointer) {
        guard let error = JSONScanner.valueRange(at: [.member("error")], in: body) else { return }
        var scanner = JSONScanner(body, range: error)
        try? scanner.forEachMember(depth: 2) { name, value in
            if JSONText.matches(name, "message", in: body) {
                message = JSONText.decodeString(value: value, in: body)
            } else if JSONText.matches(name, "type", in: body) {
                type = JSONText.decodeString(value: value, in: body)
            } else if JSONText.matches(name, "code", in: body) {
                code = JSONText.decodeString(value: value, in: body)
            }
            return true
        }
    }
}
