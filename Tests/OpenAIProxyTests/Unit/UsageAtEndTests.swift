import NIOCore
import NIOHTTP1
import RequestScanning
import Testing

@testable import ProxyWorker

/// The shortcut that reads a whole JSON answer's usage from its end: it answers only where the byte-by-byte
/// reader must give the same counts, and says `unsure` (the answer is then read from its start) everywhere else.
@Suite("Usage read from an answer's end")
struct UsageAtEndTests {
    /// The byte-by-byte reader's usage of `answer`: what every verdict is held to.
    private func streamed(_ answer: String) -> TokenUsage? {
        var reader = UsageReader()
        Array(answer.utf8).withUnsafeBytes { reader.consume($0) }
        return reader.finish()
    }

    private func atEnd(_ answer: String) -> UsageAtEnd {
        Array(answer.utf8).withUnsafeBytes { UsageReader.usageAtEnd(of: $0) }
    }

    private static let completion =
        #"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_1"}"#

    /// Answers and the verdict each must get. `found` and `absent` must agree with the byte-by-byte reader.
    private static let cases: [(String, UsageAtEnd)] = [
        (
            completion,
            .found(
                TokenUsage(
                    promptTokens: 21, completionTokens: 9, totalTokens: 30, cachedTokens: 4, reasoningTokens: 2,
                    audioInputTokens: 0, audioOutputTokens: 0))
        ),
        // The Responses API: `usage` last; whitespace anywhere; brackets and quotes inside later strings.
        (
            #" { "id" : "resp_1" , "output" : [ { "content" : "a \"}\" ]" } ] , "usage" : { "input_tokens" : 3 , "output_tokens" : 4 } , "z" : [ 1 , { "a" : "}\\" } ] }"#
                + "\n",
            .found(TokenUsage(promptTokens: 3, completionTokens: 4, totalTokens: 7))
        ),
        // Text that spells out a usage object inside a string has its quotes escaped: not a name.
        (
            #"{"choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":999}}"}}],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#,
            .found(TokenUsage(promptTokens: 2, completionTokens: 1, totalTokens: 3))
        ),
        // `"response"` as a value (every Responses answer's `object`) is no name; as a name, its object comes first.
        (
            #"{"id":"resp_1","object":"response","usage":{"input_tokens":1,"output_tokens":2}}"#,
            .found(TokenUsage(promptTokens: 1, completionTokens: 2, totalTokens: 3))
        ),
        (#"{"object":"response","response" :{},"usage":{"input_tokens":1}}"#, .unsure),
        (#"{"id":"x","data":[1,2,3]}"#, .absent),
        (#"{"a":"\u0075sage","usage_x":{"prompt_tokens":1}}"#, .absent),
        // A string whose text ends in `"usage` writes the bytes once more, before the real name.
        (#"{"content":"say \"usage","usage":{"prompt_tokens":1}}"#, .unsure),
        // The only `"usage"` is text inside a string (its opening quote escaped, also after escaped backslashes).
        (#"{"a":"x\"usage","b":{"prompt_tokens":1}}"#, .unsure),
        (#"{"a":"\\\"usage","b":1}"#, .unsure),
        // Not at the top level: inside `choices`, inside a member's object that the answer's end closes too.
        (#"{"choices":[{"usage":{"prompt_tokens":7}}]}"#, .unsure),
        (#"{"x":{"usage":{"prompt_tokens":7}}}"#, .unsure),
        (#"{"x":{"usage":{"prompt_tokens":7},"y":1}}"#, .unsure),
        // Written twice: the reader takes the first, and so does the shortcut. After a `response` object, whose
        // usage the reader reads first, it is left to the reader.
        (
            #"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
            .found(TokenUsage(promptTokens: 1, completionTokens: nil, totalTokens: 1))
        ),
        (#"{"response":{"usage":{"input_tokens":3}},"usage":{"input_tokens":5}}"#, .unsure),
        // No counts (the reader would go on looking), a string value, a top-level array, text after the end.
        (#"{"usage":null,"response":{"usage":{"input_tokens":3}}}"#, .unsure),
        (#"{"usage":{}}"#, .unsure),
        (#"{"object":"usage","n":1}"#, .unsure),
        (#"[{"usage":{"prompt_tokens":1}}]"#, .unsure),
        (#"{"usage":{"prompt_tokens":1}} x"#, .unsure),
        (#"{"usage":{"prompt_tokens":1}}}"#, .unsure),
        // Cut short: the reader reads the usage value the bytes end in; the shortcut leaves it to the reader.
        (#"{"usage":{"prompt_tokens":2,"completion_tokens":3}"#, .unsure),
        (#"{"usage":{"prompt_tokens":2,"#, .unsure),
        // Not a member name: no colon, or no comma before it.
        (#"{"a":["usage"],"b":{"prompt_tokens":1}}"#, .unsure),
        (#"{"a":1 "usage":{"prompt_tokens":1}}"#, .unsure),
    ]

    @Test("the verdict of every answer, hostile ones included, and found or absent only where the reader agrees")
    func verdicts() {
        for (answer, expected) in Self.cases {
            let verdict = atEnd(answer)
            #expect(verdict == expected, "\(answer)")
            switch verdict {
            case .found(let usage): #expect(streamed(answer) == usage, "\(answer)")
            case .absent: #expect(streamed(answer) == nil, "\(answer)")
            case .unsure: break
            }
        }
    }

    @Test("a usage value longer than the reader keeps, trailing whitespace counted, is left to the reader")
    func oversizedUsage() {
        let padding = String(repeating: " ", count: UsageReader.captureLimit)
        let answer = "{\"usage\":{\"prompt_tokens\":1," + padding + "\"total_tokens\":1}}"
        #expect(atEnd(answer) == .unsure)
        #expect(streamed(answer) == nil)
        // At the limit exactly the reader reads it; one byte of whitespace after the value more, and it does not.
        let value = "{\"prompt_tokens\":1}"
        let fitting = String(repeating: " ", count: UsageReader.captureLimit - value.utf8.count)
        let exact = "{\"usage\":" + value + fitting + "}"
        let usage = TokenUsage(promptTokens: 1, completionTokens: nil, totalTokens: 1)
        #expect(streamed(exact) == usage)
        #expect(atEnd(exact) == .found(usage))
        let over = "{\"usage\":" + value + fitting + " }"
        #expect(streamed(over) == nil)
        #expect(atEnd(over) == .unsure)
    }

    // MARK: - The sniffer

    private func headers(_ pairs: [(String, String)]) -> HTTPHeaders {
        HTTPHeaders([("Content-Type", "application/json")] + pairs)
    }

    /// The sniffer's usage for `parts` of an answer with `headers`; `ended`: the body ended as framed.
    private func sniffed(
        _ parts: [String], headers: HTTPHeaders, ended: Bool, readsObject: Bool = false
    )
        -> (TokenUsage?, CreatedObject?)
    {
        var sniffer = UsageSniffer(headers: headers, reads: true, readsObject: readsObject)
        for part in parts { sniffer.consume(ByteBuffer(string: part)) }
        if ended { sniffer.answerEnded() }
        let usage = sniffer.finish()
        return (usage, sniffer.createdObject)
    }

    @Test("a framed JSON answer that ended is read from its end, in one part or several, with the same counts")
    func framedAnswers() {
        let expected = TokenUsage(
            promptTokens: 21, completionTokens: 9, totalTokens: 30, cachedTokens: 4, reasoningTokens: 2,
            audioInputTokens: 0, audioOutputTokens: 0)
        let body = Self.completion
        let sized = headers([("Content-Length", "\(body.utf8.count)")])
        let chunked = headers([("transfer-encoding", "chunked")])
        for framing in [sized, chunked] {
            #expect(sniffed([body], headers: framing, ended: true).0 == expected)
            let cut = body.index(body.startIndex, offsetBy: body.utf8.count - 40)
            #expect(sniffed([String(body[..<cut]), String(body[cut...])], headers: framing, ended: true).0 == expected)
            #expect(sniffed(["", body, ""], headers: framing, ended: true).0 == expected)
        }
    }

    /// An answer that the shortcut takes as having `usage` at the top level once it is whole, although a reader
    /// from its start finds it one level down: which reading was taken shows in the result.
    private static let nestedWhenCut = #"{"x":{"usage":{"prompt_tokens":7}}"#

    @Test("only an answer that ended as framed is read from its end; a cut, unframed or object answer from its start")
    func whichReading() {
        let fromEnd = TokenUsage(promptTokens: 7, completionTokens: nil, totalTokens: 7)
        #expect(atEnd(Self.nestedWhenCut) == .found(fromEnd))
        #expect(streamed(Self.nestedWhenCut) == nil)
        let sized = headers([("Content-Length", "1000")])
        // Ended as framed: read from its end.
        #expect(sniffed([Self.nestedWhenCut], headers: sized, ended: true).0 == fromEnd)
        // Cut (the framing's end never came), or ended with the connection only (no length, not chunked): read
        // from its start.
        #expect(sniffed([Self.nestedWhenCut], headers: sized, ended: false).0 == nil)
        #expect(sniffed([Self.nestedWhenCut], headers: headers([]), ended: true).0 == nil)
        #expect(
            sniffed([Self.nestedWhenCut], headers: headers([("Transfer-Encoding", "gzip")]), ended: true).0 == nil)
        // An answer to a create call is read from its start, for its object as well.
        let created = #"{"id":"file-1","object":"file","x":{"usage":{"prompt_tokens":7}}"#
        let (usage, object) = sniffed([created], headers: sized, ended: true, readsObject: true)
        #expect(usage == nil)
        #expect(object == CreatedObject(id: "file-1", kind: "file"))
    }

    @Test("an answer longer than the sniffer keeps is read as it passes, to the same counts")
    func longAnswer() {
        let filler = String(repeating: "lorem ipsum [{\\\"usage\\\":1}] ", count: 20_000)
        let body =
            #"{"choices":[{"message":{"content":""# + filler
            + #""}}],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}"#
        #expect(body.utf8.count > UsageSniffer.wholeAnswerLimit)
        var parts: [String] = []
        var rest = Substring(body)
        while !rest.isEmpty {
            parts.append(String(rest.prefix(65_536)))
            rest = rest.dropFirst(65_536)
        }
        let sized = headers([("Content-Length", "\(body.utf8.count)")])
        #expect(
            sniffed(parts, headers: sized, ended: true).0
                == TokenUsage(promptTokens: 5, completionTokens: 6, totalTokens: 11))
    }

    @Test("an event is passed over unparsed only where it holds no counts, as most stream events do")
    func eventsWithoutUsage() {
        let skipped = [
            #"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}"#,
            #" {"choices":[{"delta":{"content":"say \"usage\":{\"prompt_tokens\":9}"}}], "usage" : null}"#,
            #"{"type":"response.created","response":{"id":"resp_1","usage":null}}"#,
            #"{"type":"response.output_text.delta","delta":"usage"}"#,
            #"{"a":"usage","b":{"prompt_tokens":1}}"#, #"{"usage":nullx}"#, " [DONE]", "",
        ]
        let read = [
            #"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
            #"{"type":"response.completed","response":{"usage":{"input_tokens":1,"output_tokens":2}}}"#,
            #"{"\u0075sage":{"prompt_tokens":4}}"#, #"{"usage":{}}"#, #"{"x":"\\\u0041"}"#,
        ]
        for payload in skipped + read {
            let bytes = Array(payload.utf8)
            let may = bytes.withUnsafeBytes { JSONScanner.mayHoldUsage($0) }
            #expect(may == read.contains(payload), "\(payload)")
            if !may { #expect(bytes.withUnsafeBytes { JSONScanner.usage(in: $0) } == nil, "\(payload)") }
        }
        #expect(
            Array(read[2].utf8).withUnsafeBytes { JSONScanner.usage(in: $0) }
                == TokenUsage(promptTokens: 4, completionTokens: nil, totalTokens: 4))
    }
}
