import NIOCore

/// Token counts an upstream reported in a `usage` object.
struct TokenUsage: Sendable, Equatable {
    var promptTokens: Int?
    var completionTokens: Int?
    var totalTokens: Int?
}

/// Watches an answer's bytes as they stream past and finds the token usage in them, without holding
/// up a single byte: whole JSON bodies (up to a size) are scanned at the end, event streams line by line.
struct UsageSniffer {
    enum Mode {
        case json
        case eventStream
        case ignored
    }

    private(set) var mode: Mode
    private var collected: ByteBuffer?
    private var partialLine: [UInt8] = []
    private var lastUsage: TokenUsage?
    private let jsonLimit: Int

    /// A sniffer for an answer with this content type.
    init(contentType: String?, jsonLimit: Int = 4 << 20) {
        let type = contentType ?? ""
        if type.hasPrefixIgnoringASCIICase("text/event-stream") {
            mode = .eventStream
        } else if type.containsIgnoringASCIICase("json") {
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
            if (collected?.readableBytes ?? 0) + chunk.readableBytes > jsonLimit {
                mode = .ignored
                collected = nil
            } else if collected == nil {
                // Usually the whole answer is one chunk: keep it (shared, not copied) rather than copy it.
                collected = chunk
            } else {
                var chunk = chunk
                collected!.writeBuffer(&chunk)
            }
        case .eventStream:
            chunk.withUnsafeReadableBytes { bytes in
                var start = 0
                while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    if partialLine.isEmpty {
                        inspect(line: UnsafeRawBufferPointer(rebasing: bytes[start..<newline]))
                    } else {
                        partialLine.append(contentsOf: bytes[start..<newline])
                        finishPartialLine()
                    }
                    start = newline + 1
                }
                // An event line longer than the JSON limit cannot carry usage we would read anyway.
                if start < bytes.count, partialLine.count < jsonLimit {
                    partialLine.append(contentsOf: bytes[start...])
                }
            }
        }
    }

    /// The usage found, once the body has ended.
    mutating func finish() -> TokenUsage? {
        switch mode {
        case .json:
            return collected?.withUnsafeReadableBytes { JSONScanner.usage(in: $0) }
        case .eventStream:
            if !partialLine.isEmpty { finishPartialLine() }
            return lastUsage
        case .ignored:
            return lastUsage
        }
    }

    private mutating func finishPartialLine() {
        let line = partialLine
        partialLine.removeAll(keepingCapacity: true)
        line.withUnsafeBytes { inspect(line: $0) }
    }

    private static let dataPrefix = Array("data:".utf8)

    private static let done = Array(" [DONE]".utf8)

    /// Data events seen in an event stream, `[DONE]` aside: OpenAI sends about one token per event.
    private(set) var dataEvents = 0

    private mutating func inspect(line: UnsafeRawBufferPointer) {
        guard line.starts(with: Self.dataPrefix) else { return }
        let payload = UnsafeRawBufferPointer(rebasing: line[Self.dataPrefix.count...])
        if let usage = JSONScanner.usage(in: payload) {
            lastUsage = usage
        } else if !payload.elementsEqual(Self.done) {
            dataEvents += 1
        }
    }
}
