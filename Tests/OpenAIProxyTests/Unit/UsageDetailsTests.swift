import NIOCore
import NIOHTTP1
import RequestScanning
import Testing

@testable import ProxyWorker

/// Answers shaped as OpenAI sends them, one per endpoint, with the usage details each reports.
@Suite("Usage details: cached, reasoning and audio tokens")
struct UsageDetailsTests {
    /// The usage of a whole JSON body, read in one pass as a worker reads it (split in two chunks, so a
    /// details object is cut across them), and checked against the whole-document scanner.
    private func json(_ body: String) -> TokenUsage? {
        let bytes = Array(body.utf8)
        var split: TokenUsage?
        for cut in [bytes.count / 2, bytes.count - 20] {
            var sniffer = UsageSniffer(contentType: "application/json")
            sniffer.consume(ByteBuffer(bytes: bytes[..<cut]))
            sniffer.consume(ByteBuffer(bytes: bytes[cut...]))
            let found = sniffer.finish()
            if let split { #expect(found == split, "cut at \(cut)") }
            split = found
        }
        #expect(bytes.withUnsafeBytes { JSONScanner.usage(in: $0) } == split)
        // Read from its end, as a worker reads an answer of known length that ended, and as it arrives.
        var sized = UsageSniffer(
            headers: ["Content-Type": "application/json", "Content-Length": "\(bytes.count)"], reads: true,
            readsObject: false)
        sized.consume(ByteBuffer(bytes: bytes))
        sized.answerEnded()
        #expect(sized.finish() == split)
        #expect(bytes.withUnsafeBytes { UsageReader.usageAtEnd(of: $0) } == split.map { .found($0) } ?? .absent)
        return split
    }

    /// The usage of an event stream, fed in chunks of 7 bytes.
    private func events(_ stream: String) -> TokenUsage? {
        let bytes = Array(stream.utf8)
        var sniffer = UsageSniffer(contentType: "text/event-stream")
        var offset = 0
        while offset < bytes.count {
            sniffer.consume(ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + 7)]))
            offset += 7
        }
        return sniffer.finish()
    }

    @Test("chat completions: cached and audio prompt tokens, reasoning and audio completion tokens")
    func chatCompletion() {
        let body = #"""
            {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,
            "model":"o4-mini-2025-04-16","choices":[{"index":0,"message":{"role":"assistant",
            "content":"The image shows a wooden boardwalk.","refusal":null,"annotations":[]},"logprobs":null,
            "finish_reason":"stop"}],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
            "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":
            {"reasoning_tokens":256,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},
            "service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}
            """#
        #expect(
            json(body)
                == TokenUsage(
                    promptTokens: 2006, completionTokens: 300, totalTokens: 2306, cachedTokens: 1920,
                    reasoningTokens: 256, audioInputTokens: 0, audioOutputTokens: 0))
    }

    @Test("a streamed chat completion: the usage chunk's details")
    func streamedChatCompletion() {
        let stream = """
            data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}

            data: {"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":40,"total_tokens":1240,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":16,"audio_tokens":0}}}

            data: [DONE]


            """
        #expect(
            events(stream)
                == TokenUsage(
                    promptTokens: 1200, completionTokens: 40, totalTokens: 1240, cachedTokens: 1024,
                    reasoningTokens: 16, audioInputTokens: 0, audioOutputTokens: 0))
    }

    @Test("gpt-4o-audio chat: audio tokens in and out")
    func audioChat() {
        let body = #"""
            {"id":"chatcmpl-a","object":"chat.completion","model":"gpt-4o-audio-preview","choices":[{"index":0,
            "message":{"role":"assistant","content":null,"audio":{"id":"audio_1","data":"UklGRi4A\nAAB","expires_at":1,
            "transcript":"Yes."}},"finish_reason":"stop"}],"usage":{"prompt_tokens":117,"completion_tokens":62,
            "total_tokens":179,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":69},
            "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":48}}}
            """#
        #expect(
            json(body)
                == TokenUsage(
                    promptTokens: 117, completionTokens: 62, totalTokens: 179, cachedTokens: 0, reasoningTokens: 0,
                    audioInputTokens: 69, audioOutputTokens: 48))
    }

    @Test("Responses: a whole body, and a stream that ends incomplete or failed")
    func responses() {
        let usage =
            #""usage":{"input_tokens":5000,"input_tokens_details":{"cached_tokens":4096},"output_tokens":700,"output_tokens_details":{"reasoning_tokens":512},"total_tokens":5700}"#
        let expected = TokenUsage(
            promptTokens: 5000, completionTokens: 700, totalTokens: 5700, cachedTokens: 4096, reasoningTokens: 512)
        #expect(
            json(
                #"{"id":"resp_67ccd2bed1ec8190","object":"response","created_at":1741476542,"status":"completed","model":"o3","output":[{"type":"reasoning","id":"rs_1","summary":[]},{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello","annotations":[]}]}],"#
                    + usage + #","user":null,"metadata":{}}"#) == expected)
        for end in ["response.incomplete", "response.failed", "response.completed"] {
            let stream = """
                event: response.created
                data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress","usage":null}}

                event: response.output_text.delta
                data: {"type":"response.output_text.delta","sequence_number":1,"delta":"Hel"}

                event: \(end)
                data: {"type":"\(end)","sequence_number":2,"response":{"id":"resp_1","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"error":null,\(usage)}}


                """
            #expect(events(stream) == expected, "\(end)")
        }
    }

    @Test("embeddings and speech report no details: the counts stay absent, not 0")
    func noDetails() {
        #expect(
            json(
                #"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#
            ) == TokenUsage(promptTokens: 8, completionTokens: nil, totalTokens: 8))
        let speech = """
            data: {"type":"speech.audio.delta","audio":"AAAA"}

            data: {"type":"speech.audio.done","usage":{"input_tokens":14,"output_tokens":101,"total_tokens":115}}


            """
        #expect(events(speech) == TokenUsage(promptTokens: 14, completionTokens: 101, totalTokens: 115))
        // A details object that is null adds nothing.
        #expect(
            json(#"{"usage":{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":null}}"#)
                == TokenUsage(promptTokens: 3, completionTokens: 1, totalTokens: 4))
    }

    @Test("audio transcriptions: audio input tokens, whole and streamed")
    func transcription() {
        let usage =
            #""usage":{"type":"tokens","input_tokens":14,"input_token_details":{"text_tokens":0,"audio_tokens":14},"output_tokens":45,"total_tokens":59}"#
        let expected = TokenUsage(promptTokens: 14, completionTokens: 45, totalTokens: 59, audioInputTokens: 14)
        #expect(
            json(#"{"text":"Imagine the wildest idea that you've ever had.","logprobs":null,"# + usage + "}")
                == expected)
        let stream = """
            data: {"type":"transcript.text.delta","delta":"Imagine"}

            data: {"type":"transcript.text.done","text":"Imagine the wildest idea.",\(usage)}


            """
        #expect(events(stream) == expected)
    }

    @Test("images: counts read, the text and image split of the input is not an audio or cached count")
    func images() {
        #expect(
            json(
                #"{"created":1713833628,"data":[{"b64_json":"iVBORw0KGgo="}],"usage":{"total_tokens":100,"input_tokens":50,"output_tokens":50,"input_tokens_details":{"text_tokens":10,"image_tokens":40}}}"#
            ) == TokenUsage(promptTokens: 50, completionTokens: 50, totalTokens: 100))
    }

    @Test("Realtime response.done: cached and audio input, audio output; the cached split is not read as audio")
    func realtime() {
        var session = WebSocketSession(allowedModels: nil, model: "gpt-realtime")
        let ended = session.upstreamFrame(
            opcode: .text, fin: true,
            payload: ByteBuffer(
                string: #"""
                    {"type":"response.done","event_id":"event_3132","response":{"object":"realtime.response",
                    "id":"resp_ABC","status":"completed","status_details":null,"output":[{"id":"item_1",
                    "object":"realtime.item","type":"message","status":"completed","role":"assistant",
                    "content":[{"type":"audio","transcript":"Hi there!"}]}],"usage":{"total_tokens":253,
                    "input_tokens":132,"output_tokens":121,"input_token_details":{"text_tokens":119,
                    "audio_tokens":13,"cached_tokens":64,"cached_tokens_details":{"text_tokens":64,"audio_tokens":0}},
                    "output_token_details":{"text_tokens":30,"audio_tokens":91}}}}
                    """#))
        #expect(
            ended?.usage
                == TokenUsage(
                    promptTokens: 132, completionTokens: 121, totalTokens: 253, cachedTokens: 64,
                    audioInputTokens: 13, audioOutputTokens: 91))
    }
}
