import NIOCore
import RequestScanning

/// The text of an answer, for the chat history in `full` mode: the message of a JSON answer, or the
/// content of every delta of an event stream put back together. Only requests whose history is kept
/// pay for it.
struct AnswerTranscript {
    private let eventStream: Bool
    private let limit: Int
    private var body: [UInt8] = []
    private var partialLine: [UInt8] = []
    private var text = ""

    /// A transcript of an answer of this kind, keeping up to `limit` bytes of text.
    init(eventStream: Bool, limit: Int) {
        self.eventStream = eventStream
        self.limit = limit
    }

    /// Takes the next part of the body.
    mutating func consume(_ chunk: ByteBuffer) {
        guard eventStream else {
            // A JSON answer is read at the end; an answer far past the limit is not a chat message.
            if body.count + chunk.readableBytes <= max(limit * 4, 1 << 20) {
                body.append(contentsOf: chunk.readableBytesView)
            }
            return
        }
        for byte in chunk.readableBytesView {
            if byte == UInt8(ascii: "\n") {
                take(line: partialLine)
                partialLine.removeAll(keepingCapacity: true)
            } else if partialLine.count < 1 << 20 {
                partialLine.append(byte)
            }
        }
    }

    /// The answer's text so far (for a cut stream, what was streamed), or nil when there is none.
    mutating func finish() -> String? {
        if eventStream {
            if !partialLine.isEmpty { take(line: partialLine) }
            return text.isEmpty ? nil : text
        }
        return body.withUnsafeBytes { AnswerText.message(in: $0) }
    }

    private mutating func take(line: [UInt8]) {
        guard line.starts(with: Self.dataPrefix), text.utf8.count < limit else { return }
        let piece = line.withUnsafeBytes { bytes in
            AnswerText.delta(in: UnsafeRawBufferPointer(rebasing: bytes[Self.dataPrefix.count...]))
        }
        if let piece { text += piece }
    }

    private static let dataPrefix = Array("data:".utf8)
}

extension AnswerTranscript {
    /// The messages of a chat request (or the `input` / `prompt` of the other kinds) exactly as the client
    /// wrote them; the whole body when it has none of them.
    static func requestText(_ body: ByteBuffer) -> String? {
        guard body.readableBytes > 0 else { return nil }
        return body.withUnsafeReadableBytes { bytes in
            for field in ["messages", "input", "prompt"] {
                guard let range = JSONScanner.valueRange(at: [.member(field)], in: bytes) else { continue }
                // A plain string is kept as its text, without the JSON quotes and escapes.
                if bytes[range.lowerBound] == UInt8(ascii: "\""),
                    let text = JSONText.decodeString(value: range, in: bytes)
                {
                    return text
                }
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
