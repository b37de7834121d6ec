import Foundation
import NIOCore
import NIOFoundationCompat

/// Token counts an upstream reported in a `usage` object.
struct TokenUsage: Sendable, Equatable, Decodable {
    var promptTokens: Int?
    var completionTokens: Int?
    var totalTokens: Int?

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        case inputTokens = "input_tokens", outputTokens = "output_tokens"
    }

    init(promptTokens: Int?, completionTokens: Int?, totalTokens: Int?) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
    }

    // Chat and embeddings say prompt/completion; the Responses API says input/output.
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        promptTokens =
            try c.decodeIfPresent(Int.self, forKey: .promptTokens)
            ?? c.decodeIfPresent(Int.self, forKey: .inputTokens)
        completionTokens =
            try c.decodeIfPresent(Int.self, forKey: .completionTokens)
            ?? c.decodeIfPresent(Int.self, forKey: .outputTokens)
        totalTokens = try c.decodeIfPresent(Int.self, forKey: .totalTokens)
        if totalTokens == nil, let prompt = promptTokens { totalTokens = prompt + (completionTokens ?? 0) }
    }
}

/// Where `usage` sits in an answer: at the top (chat, embeddings) or inside `response` (Responses API events).
private struct UsageEnvelope: Decodable {
    struct Inner: Decodable { var usage: TokenUsage? }
    var usage: TokenUsage?
    var response: Inner?

    var found: TokenUsage? { usage ?? response?.usage }
}

/// Watches an answer's bytes as they stream past and finds the token usage in them, without holding
/// up a single byte: whole JSON bodies (up to a size) are parsed at the end, event streams line by line.
struct UsageSniffer {
    enum Mode {
        case json
        case eventStream
        case ignored
    }

    private(set) var mode: Mode
    private var collected = ByteBuffer()
    private var partialLine: [UInt8] = []
    private var lastUsage: TokenUsage?
    private let jsonLimit: Int

    /// A sniffer for an answer with this content type.
    init(contentType: String?, jsonLimit: Int = 4 << 20) {
        let type = contentType?.lowercased() ?? ""
        if type.hasPrefix("text/event-stream") {
            mode = .eventStream
        } else if type.contains("json") {
            mode = .json
        } else {
            mode = .ignored
        }
        self.jsonLimit = jsonLimit
    }

    /// Looks at the next chunk of the body.
    mutating func consume(_ chunk: ByteBuffer) {
        switch mode {
        case .ignored:
            return
        case .json:
            if collected.readableBytes + chunk.readableBytes > jsonLimit {
                mode = .ignored
                collected = ByteBuffer()
            } else {
                var chunk = chunk
                collected.writeBuffer(&chunk)
            }
        case .eventStream:
            let bytes = chunk.readableBytesView
            var start = bytes.startIndex
            while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
                if partialLine.isEmpty {
                    inspect(line: bytes[start..<newline])
                } else {
                    partialLine.append(contentsOf: bytes[start..<newline])
                    inspect(line: partialLine[...])
                    partialLine.removeAll(keepingCapacity: true)
                }
                start = bytes.index(after: newline)
            }
            if start < bytes.endIndex {
                // An event line longer than the JSON limit cannot carry usage we would parse anyway.
                if partialLine.count < jsonLimit { partialLine.append(contentsOf: bytes[start...]) }
            }
        }
    }

    /// The usage found, once the body has ended.
    mutating func finish() -> TokenUsage? {
        switch mode {
        case .json:
            return (try? JSONDecoder().decode(UsageEnvelope.self, from: collected))?.found
        case .eventStream:
            if !partialLine.isEmpty { inspect(line: partialLine[...]) }
            return lastUsage
        case .ignored:
            return nil
        }
    }

    private static let dataPrefix = Array("data:".utf8)
    private static let usageKey = Array("\"usage\"".utf8)

    private mutating func inspect<Line: Collection<UInt8>>(line: Line) {
        guard line.starts(with: Self.dataPrefix), Self.hasUsageObject(line) else { return }
        let payload = Data(line.dropFirst(Self.dataPrefix.count))
        if let usage = (try? JSONDecoder().decode(UsageEnvelope.self, from: payload))?.found {
            lastUsage = usage
        }
    }

    /// True when the line has `"usage"` followed by `:` and an object (not `null`).
    static func hasUsageObject<Line: Collection<UInt8>>(_ line: Line) -> Bool {
        let bytes = Array(line)
        var index = 0
        let key = usageKey
        while index + key.count <= bytes.count {
            if bytes[index] == key[0], bytes[index..<(index + key.count)].elementsEqual(key) {
                var cursor = index + key.count
                while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
                if cursor < bytes.count, bytes[cursor] == UInt8(ascii: ":") {
                    cursor += 1
                    while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") { cursor += 1 }
                    if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "{") { return true }
                }
                index += key.count
            } else {
                index += 1
            }
        }
        return false
    }
}
