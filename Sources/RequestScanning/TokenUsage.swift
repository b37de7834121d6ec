/// Token counts an upstream reported in a `usage` object.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var totalTokens: Int?

    /// Counts from their parts.
    public init(promptTokens: Int?, completionTokens: Int?, totalTokens: Int?) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
    }
}

extension JSONScanner {
    /// Token counts from the top-level `usage` object, or from `response.usage` (Responses API events):
    /// the first of them that holds counts.
    public static func usage(in bytes: UnsafeRawBufferPointer) -> TokenUsage? {
        var scanner = JSONScanner(bytes)
        var usage: TokenUsage?
        try? scanner.forEachMember { name, value in
            if JSONText.matches(name, "usage", in: bytes) {
                usage = readUsage(value, in: bytes, depth: 2)
            } else if JSONText.matches(name, "response", in: bytes) {
                var inner = JSONScanner(bytes, range: value)
                try? inner.forEachMember(depth: 2) { innerName, innerValue in
                    guard JSONText.matches(innerName, "usage", in: bytes) else { return true }
                    usage = readUsage(innerValue, in: bytes, depth: 3)
                    return usage == nil
                }
            }
            return usage == nil
        }
        return usage
    }

    /// The counts of the `usage` object at `range`; nil when it is not an object (`null`, say) or has none.
    public static func readUsage(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer, depth: Int) -> TokenUsage? {
        var scanner = JSONScanner(bytes, range: range)
        var prompt: Int?
        var completion: Int?
        var total: Int?
        do {
            try scanner.forEachMember(depth: depth) { name, value in
                let number = UnsafeRawBufferPointer(rebasing: bytes[value])
                if JSONText.matches(name, "prompt_tokens", in: bytes)
                    || JSONText.matches(name, "input_tokens", in: bytes)
                {
                    prompt = integer(number)
                } else if JSONText.matches(name, "completion_tokens", in: bytes)
                    || JSONText.matches(name, "output_tokens", in: bytes)
                {
                    completion = integer(number)
                } else if JSONText.matches(name, "total_tokens", in: bytes) {
                    total = integer(number)
                }
                return true
            }
        } catch {
            return nil
        }
        guard prompt != nil || completion != nil || total != nil else { return nil }
        return TokenUsage(
            promptTokens: prompt, completionTokens: completion,
            totalTokens: total ?? prompt.map { $0 + (completion ?? 0) })
    }

    /// A non-negative integer written in plain digits; nil for anything else or one too large.
    static func integer(_ text: UnsafeRawBufferPointer) -> Int? {
        guard !text.isEmpty else { return nil }
        var value = 0
        for byte in text {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowSum) = product.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflow, !overflowSum else { return nil }
            value = sum
        }
        return value
    }
}
