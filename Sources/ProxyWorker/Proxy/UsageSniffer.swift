import NIOCore
import RequestScanning

/// Watches an answer's bytes as they stream past and finds the token usage in them, without holding
/// up a single byte: JSON bodies byte by byte as they pass (any size, constant memory), event streams line
/// by line. For the answer to a create call it also finds the object created, in the same pass: the top-level
/// `id` and `object` of a JSON answer, or the `response` of a stream's first `response.created` event.
struct UsageSniffer {
    enum Mode {
        case json
        case eventStream
        case ignored
    }

    private(set) var mode: Mode
    private var reader = UsageReader()
    private var partialLine: [UInt8] = []
    private var lastUsage: TokenUsage?
    private let lineLimit: Int
    private let reads: Bool
    private let readsObject: Bool
    private var streamedObject: CreatedObject?

    /// A sniffer for an answer with this content type; event lines longer than `lineLimit` are not read.
    /// One that does not `reads` only tells the answer's mode (usage is not recorded); one that `readsObject`
    /// finds the object a create call's answer names.
    init(contentType: String?, lineLimit: Int = 4 << 20, reads: Bool = true, readsObject: Bool = false) {
        let type = contentType ?? ""
        if type.hasPrefixIgnoringASCIICase("text/event-stream") {
            mode = .eventStream
        } else if type.containsIgnoringASCIICase("json") {
            mode = .json
        } else {
            mode = .ignored
        }
        self.lineLimit = lineLimit
        self.reads = reads
        self.readsObject = readsObject
        if readsObject { reader = UsageReader(readsObject: true) }
    }

    /// The object the answer created (its `id` and `object`), when the sniffer `readsObject` and found one.
    var createdObject: CreatedObject? {
        switch mode {
        case .json:
            guard let id = reader.objectID, let kind = reader.objectKind else { return nil }
            return CreatedObject(id: id, kind: kind)
        case .eventStream: return streamedObject
        case .ignored: return nil
        }
    }

    /// Looks at the next chunk of the body.
    mutating func consume(_ chunk: ByteBuffer) {
        guard reads || readsObject else { return }
        switch mode {
        case .ignored:
            return
        case .json:
            chunk.withUnsafeReadableBytes { reader.consume($0) }
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
                // An event line longer than the limit cannot carry usage we would read anyway.
                if start < bytes.count, partialLine.count < lineLimit {
                    partialLine.append(contentsOf: bytes[start...])
                }
            }
        }
    }

    /// The usage found, once the body has ended.
    mutating func finish() -> TokenUsage? {
        switch mode {
        case .json:
            return reader.finish()
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
        if readsObject, streamedObject == nil, dataEvents == 0 {
            // The first event of a Responses stream, `response.created`, names the response.
            streamedObject = CreatedObject.inResponseCreated(payload)
        }
        if let usage = JSONScanner.usage(in: payload) {
            lastUsage = usage
        } else if !payload.elementsEqual(Self.done) {
            dataEvents += 1
        }
    }
}

/// An object a create call's answer named.
struct CreatedObject: Equatable {
    /// OpenAI's id.
    var id: String
    /// Its `object` (`file`, `batch`, `response` …).
    var kind: String

    /// The response a `response.created` event's payload names; nil for any other payload.
    static func inResponseCreated(_ payload: UnsafeRawBufferPointer) -> CreatedObject? {
        guard JSONScanner.string(at: [.member("type")], in: payload) == "response.created",
            let id = JSONScanner.string(at: [.member("response"), .member("id")], in: payload), !id.isEmpty
        else { return nil }
        let kind = JSONScanner.string(at: [.member("response"), .member("object")], in: payload) ?? "response"
        return CreatedObject(id: id, kind: kind)
    }
}
