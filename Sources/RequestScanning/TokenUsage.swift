/// Token counts an upstream reported in a `usage` object.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var totalTokens: Int?
    /// Prompt tokens served from the prompt cache (`cached_tokens` of the input/prompt details).
    public var cachedTokens: Int?
    /// Completion tokens spent reasoning (`reasoning_tokens` of the output/completion details).
    public var reasoningTokens: Int?
    /// Prompt tokens that were audio (`audio_tokens` of the input/prompt details).
    public var audioInputTokens: Int?
    /// Completion tokens that were audio (`audio_tokens` of the output/completion details).
    public var audioOutputTokens: Int?

    /// Counts from their parts; the details are absent unless given (absent is not 0).
    public init(
        promptTokens: Int?, completionTokens: Int?, totalTokens: Int?, cachedTokens: Int? = nil,
        reasoningTokens: Int? = nil, audioInputTokens: Int? = nil, audioOutputTokens: Int? = nil
    ) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
        self.audioInputTokens = audioInputTokens
        self.audioOutputTokens = audioOutputTokens
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
    ///
    /// The details objects are read in the same walk, under each name OpenAI uses for them: chat completions'
    /// `prompt_tokens_details` / `completion_tokens_details`, the Responses, images and embeddings API's
    /// `input_tokens_details` / `output_tokens_details`, and Realtime's and audio's `input_token_details` /
    /// `output_token_details`.
    public static func readUsage(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer, depth: Int) -> TokenUsage? {
        var scanner = JSONScanner(bytes, range: range)
        var usage = TokenUsage(promptTokens: nil, completionTokens: nil, totalTokens: nil)
        do {
            try scanner.forEachMember(depth: depth) { name, value in
                let number = UnsafeRawBufferPointer(rebasing: bytes[value])
                if JSONText.matches(name, "prompt_tokens", in: bytes)
                    || JSONText.matches(name, "input_tokens", in: bytes)
                {
                    usage.promptTokens = integer(number)
                } else if JSONText.matches(name, "completion_tokens", in: bytes)
                    || JSONText.matches(name, "output_tokens", in: bytes)
                {
                    usage.completionTokens = integer(number)
                } else if JSONText.matches(name, "total_tokens", in: bytes) {
                    usage.totalTokens = integer(number)
                } else if JSONText.matches(name, "prompt_tokens_details", in: bytes)
                    || JSONText.matches(name, "input_tokens_details", in: bytes)
                    || JSONText.matches(name, "input_token_details", in: bytes)
                {
                    readDetails(value, in: bytes, depth: depth + 1, input: true, into: &usage)
                } else if JSONText.matches(name, "completion_tokens_details", in: bytes)
                    || JSONText.matches(name, "output_tokens_details", in: bytes)
                    || JSONText.matches(name, "output_token_details", in: bytes)
                {
                    readDetails(value, in: bytes, depth: depth + 1, input: false, into: &usage)
                }
                return true
            }
        } catch {
            return nil
        }
        guard usage.promptTokens != nil || usage.completionTokens != nil || usage.totalTokens != nil else {
            return nil
        }
        if usage.totalTokens == nil {
            usage.totalTokens = usage.promptTokens.map { $0 + (usage.completionTokens ?? 0) }
        }
        return usage
    }

    /// Reads `cached_tokens` and `audio_tokens` of an input details object, or `reasoning_tokens` and
    /// `audio_tokens` of an output one, into `usage`; anything else (`null`, a malformed value) adds nothing.
    private static func readDetails(
        _ range: Range<Int>, in bytes: UnsafeRawBufferPointer, depth: Int, input: Bool, into usage: inout TokenUsage
    ) {
        var scanner = JSONScanner(bytes, range: range)
        // A details value that is not an object (`null`) throws before any member: nothing is read.
        try? scanner.forEachMember(depth: depth) { name, value in
            let number = UnsafeRawBufferPointer(rebasing: bytes[value])
            if JSONText.matches(name, "audio_tokens", in: bytes) {
                if input { usage.audioInputTokens = integer(number) } else { usage.audioOutputTokens = integer(number) }
            } else if input, JSONText.matches(name, "cached_tokens", in: bytes) {
                usage.cachedTokens = integer(number)
            } else if !input, JSONText.matches(name, "reasoning_tokens", in: bytes) {
                usage.reasoningTokens = integer(number)
            }
            return true
        }
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
