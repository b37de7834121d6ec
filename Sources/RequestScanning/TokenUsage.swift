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
        return readUsage(&scanner, in: bytes, depth: depth)
    }

    /// The counts of the `usage` object at `scanner`'s cursor, which moves past it; nil when it is not an object
    /// (the cursor is then anywhere) or has no counts.
    static func readUsage(_ scanner: inout JSONScanner, in bytes: UnsafeRawBufferPointer, depth: Int) -> TokenUsage? {
        var usage = TokenUsage(promptTokens: nil, completionTokens: nil, totalTokens: nil)
        do {
            try scanner.forEachMember(depth: depth) { name, value in
                let number = UnsafeRawBufferPointer(rebasing: bytes[value])
                switch UsageName(name, in: bytes) {
                case .promptTokens: usage.promptTokens = integer(number)
                case .completionTokens: usage.completionTokens = integer(number)
                case .totalTokens: usage.totalTokens = integer(number)
                case .inputDetails: readDetails(value, in: bytes, depth: depth + 1, input: true, into: &usage)
                case .outputDetails: readDetails(value, in: bytes, depth: depth + 1, input: false, into: &usage)
                default: break
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
            switch UsageName(name, in: bytes) {
            case .audioTokens:
                if input { usage.audioInputTokens = integer(number) } else { usage.audioOutputTokens = integer(number) }
            case .cachedTokens where input: usage.cachedTokens = integer(number)
            case .reasoningTokens where !input: usage.reasoningTokens = integer(number)
            default: break
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

/// The names a `usage` object and its details objects are read under, told apart by length and then bytes:
/// comparing each name against every one as text cost about half of reading an answer's usage.
private enum UsageName {
    /// `prompt_tokens` or `input_tokens`.
    case promptTokens
    /// `completion_tokens` or `output_tokens`.
    case completionTokens
    case totalTokens
    /// `prompt_tokens_details`, `input_tokens_details` or `input_token_details`.
    case inputDetails
    /// `completion_tokens_details`, `output_tokens_details` or `output_token_details`.
    case outputDetails
    case audioTokens
    case cachedTokens
    case reasoningTokens
    case other

    /// The name at `name` (escapes decoded, as `JSONText.matches` compares them).
    init(_ name: JSONStringRange, in bytes: UnsafeRawBufferPointer) {
        guard name.escaped else {
            self.init(raw: UnsafeRawBufferPointer(rebasing: bytes[name.range]))
            return
        }
        guard var text = JSONText.decode(UnsafeRawBufferPointer(rebasing: bytes[name.range])) else {
            self = .other
            return
        }
        self = text.withUTF8 { UsageName(raw: UnsafeRawBufferPointer($0)) }
    }

    /// Every name read, with what it is; looked up by length first, so most names cost one comparison.
    private static let known: [(StaticString, UsageName)] = [
        ("prompt_tokens", .promptTokens), ("input_tokens", .promptTokens),
        ("completion_tokens", .completionTokens), ("output_tokens", .completionTokens),
        ("total_tokens", .totalTokens), ("prompt_tokens_details", .inputDetails),
        ("input_tokens_details", .inputDetails), ("input_token_details", .inputDetails),
        ("completion_tokens_details", .outputDetails), ("output_tokens_details", .outputDetails),
        ("output_token_details", .outputDetails), ("audio_tokens", .audioTokens), ("cached_tokens", .cachedTokens),
        ("reasoning_tokens", .reasoningTokens),
    ]

    private init(raw: UnsafeRawBufferPointer) {
        for (literal, name) in Self.known where raw.count == literal.utf8CodeUnitCount && bytesEqual(raw, literal) {
            self = name
            return
        }
        self = .other
    }
}

/// Whether `bytes` are the bytes of `literal` (same length assumed).
private func bytesEqual(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
    let text = literal.utf8Start
    for index in 0..<bytes.count where bytes[index] != text[index] { return false }
    return true
}
