import Foundation
import NIOCore

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
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        if let text = object["output_text"] as? String { return text }
        let choice = (object["choices"] as? [[String: Any]])?.first
        return (choice?["message"] as? [String: Any])?["content"] as? String ?? choice?["text"] as? String
    }

    private mutating func take(line: [UInt8]) {
        guard line.starts(with: Array("data:".utf8)), text.utf8.count < limit,
            let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(5))) as? [String: Any]
        else { return }
        if let delta = object["delta"] as? String, (object["type"] as? String)?.hasSuffix("output_text.delta") == true {
            text += delta
            return
        }
        let choice = (object["choices"] as? [[String: Any]])?.first
        if let content = (choice?["delta"] as? [String: Any])?["content"] as? String {
            text += content
        } else if let piece = choice?["text"] as? String {
            text += piece
        }
    }
}

extension AnswerTranscript {
    /// The messages of a chat request (or the `input` / `prompt` of the other kinds) exactly as the client
    /// wrote them; the whole body when it has none of them.
    static func requestText(_ body: ByteBuffer) -> String? {
        guard body.readableBytes > 0 else { return nil }
        return body.withUnsafeReadableBytes { bytes in
            for field in ["messages", "input", "prompt"] {
                guard let range = JSONScanner.topLevelValueRange(field, in: bytes) else { continue }
                let raw = UnsafeRawBufferPointer(rebasing: bytes[range])
                // A plain string is kept as its text, without the JSON quotes and escapes.
                if raw.first == UInt8(ascii: "\""),
                    let text = try? JSONDecoder().decode(String.self, from: Data(raw))
                {
                    return text
                }
                return String(decoding: raw, as: UTF8.self)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
