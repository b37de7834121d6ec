import NIOCore
import NIOHTTP1
import RequestScanning
import Shared

/// Watches an answer's bytes as they stream past and finds the token usage in them, without holding
/// up a single byte. A JSON answer whose framing marks its end (Content-Length or chunked) is kept by reference
/// (up to `wholeAnswerLimit`, no copy while it is one part) and read from its end once it has ended, where
/// OpenAI writes `usage`; any other JSON answer, or one the shortcut is unsure of, is read byte by byte (any
/// size, constant memory). Event streams are read line by line. For the answer to a create call it also finds
/// the object created, in the same pass: the top-level `id` and `object` of a JSON answer, or the `response` of
/// a stream's first `response.created` event.
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

    /// The JSON answer is kept whole to be read from its end; false once it is read byte by byte.
    private var readsFromEnd = false
    /// The JSON answer so far, while `readsFromEnd`.
    private var wholeAnswer: ByteBuffer?
    /// The answer's body ended as its framing said (not cut, not abandoned).
    private var ended = false
    /// The usage read from the answer's end.
    private var usageAtEnd: TokenUsage?

    /// The longest JSON answer kept to be read from its end; a longer one is read byte by byte as it passes.
    /// Chat answers are a few kilobytes; the bound keeps what a request holds small.
    static let wholeAnswerLimit = 256 << 10

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

    /// A sniffer for an answer with these headers: its content type, and whether its framing (Content-Length
    /// or chunked, not the end of the connection) tells its true end, so that it can be read from its end.
    init(headers: HTTPHeaders, reads: Bool, readsObject: Bool) {
        var contentType: String?
        var framed = false
        for (name, value) in headers {
            if contentType == nil, HeaderName.matches(name, "content-type") {
                contentType = value
            } else if HeaderName.matches(name, "content-length") {
                framed = true
            } else if HeaderName.matches(name, "transfer-encoding") {
                framed = framed || value.containsIgnoringASCIICase("chunked")
            }
        }
        self.init(contentType: contentType, reads: reads, readsObject: readsObject)
        readsFromEnd = framed && mode == .json && reads && !readsObject
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
            if readsFromEnd {
                guard var kept = wholeAnswer.take() else {
                    wholeAnswer = chunk
                    return
                }
                if kept.readableBytes + chunk.readableBytes <= Self.wholeAnswerLimit {
                    kept.writeImmutableBuffer(chunk)
                    wholeAnswer = kept
                    return
                }
                // Too long to keep: read byte by byte from here on, what was kept first.
                readsFromEnd = false
                kept.withUnsafeReadableBytes { reader.consume($0) }
            }
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

    /// The answer's body ended as its framing said: a JSON answer kept whole can be read from its end.
    mutating func answerEnded() {
        ended = true
    }

    /// The usage found, once the body has ended (or was cut). Lets go of the answer kept.
    mutating func finish() -> TokenUsage? {
        switch mode {
        case .json:
            if readsFromEnd {
                readsFromEnd = false
                if let kept = wholeAnswer.take() {
                    let atEnd = ended ? kept.withUnsafeReadableBytes { UsageReader.usageAtEnd(of: $0) } : .unsure
                    switch atEnd {
                    case .absent: break
                    case .found(let usage): usageAtEnd = usage
                    case .unsure: kept.withUnsafeReadableBytes { reader.consume($0) }
                    }
                }
            }
            return usageAtEnd ?? reader.finish()
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
        // Most events carry no usage (`"usage":null` in every chat chunk): a quick look rules them out unparsed.
        if JSONScanner.mayHoldUsage(payload), let usage = JSONScanner.usage(in: payload) {
            lastUsage = usage
        } else if payload.count != Self.done.count || !payload.elementsEqual(Self.done) {
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

extension Optional {
    /// The value, leaving nil behind (so that a buffer taken out is not shared with a copy left in place).
    fileprivate mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}
