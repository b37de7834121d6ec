/// The text of an OpenAI answer, for the chat history: the message of a whole JSON answer, or the piece
/// of text one event of a stream adds.
public enum AnswerText {
    /// The text of a whole answer: `output_text` (Responses API), else the first choice's message content,
    /// else its `text` (completions).
    public static func message(in body: UnsafeRawBufferPointer) -> String? {
        JSONScanner.string(at: [.member("output_text")], in: body)
            ?? JSONScanner.string(at: [.member("choices"), .first, .member("message"), .member("content")], in: body)
            ?? JSONScanner.string(at: [.member("choices"), .first, .member("text")], in: body)
    }

    /// The text one event's data adds: an `….output_text.delta` event's `delta`, else the first choice's
    /// `delta.content`, else its `text`.
    public static func delta(in payload: UnsafeRawBufferPointer) -> String? {
        if let type = JSONScanner.string(at: [.member("type")], in: payload), type.hasSuffix("output_text.delta") {
            return JSONScanner.string(at: [.member("delta")], in: payload)
        }
        return JSONScanner.string(at: [.member("choices"), .first, .member("delta"), .member("content")], in: payload)
            ?? JSONScanner.string(at: [.member("choices"), .first, .member("text")], in: payload)
    }
}
