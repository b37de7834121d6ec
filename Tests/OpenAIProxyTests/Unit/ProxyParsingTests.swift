import NIOCore
import NIOHTTP1
import RequestScanning
import Testing

@testable import ProxyWorker
@testable import Shared

@Suite("Proxy parsing")
struct ProxyParsingTests {
    @Test("an https upstream named by IP address gets no SNI name; one named by host does")
    func upstreamServerName() throws {
        for (url, name) in [
            ("https://api.openai.com/v1", "api.openai.com"), ("https://10.1.2.3:8443/v1", nil),
            ("https://[::1]:8443/v1", nil), ("http://127.0.0.1:9/v1", nil),
        ] as [(String, String?)] {
            let target = try UpstreamTarget(try #require(UpstreamBaseURL(parsing: url)))
            #expect(target.serverName == name, "\(url)")
        }
        #expect(
            try UpstreamTarget(try #require(UpstreamBaseURL(parsing: "https://[::1]:8443/v1"))).authority
                == "[::1]:8443")
    }

    @Test("usage is found in a whole JSON answer, for chat and for the Responses API")
    func jsonUsage() {
        var sniffer = UsageSniffer(contentType: "application/json; charset=utf-8")
        sniffer.consume(ByteBuffer(string: #"{"id":"x","usage":{"prompt_tokens":12,"#))
        sniffer.consume(ByteBuffer(string: #""completion_tokens":5,"total_tokens":17}}"#))
        #expect(sniffer.finish() == TokenUsage(promptTokens: 12, completionTokens: 5, totalTokens: 17))

        var responses = UsageSniffer(contentType: "application/json")
        responses.consume(ByteBuffer(string: #"{"usage":{"input_tokens":3,"output_tokens":4}}"#))
        #expect(responses.finish() == TokenUsage(promptTokens: 3, completionTokens: 4, totalTokens: 7))
    }

    @Test("usage is found in an event stream, even when an event is split across chunks")
    func streamUsage() {
        var sniffer = UsageSniffer(contentType: "text/event-stream")
        sniffer.consume(ByteBuffer(string: "data: {\"choices\":[{\"delta\":{}}],\"usage\":null}\n\n"))
        sniffer.consume(ByteBuffer(string: "data: {\"choices\":[],\"usage\": {\"prompt_"))
        sniffer.consume(
            ByteBuffer(string: "tokens\": 9, \"completion_tokens\": 2, \"total_tokens\": 11}}\n\ndata: [DONE]\n\n"))
        #expect(sniffer.finish() == TokenUsage(promptTokens: 9, completionTokens: 2, totalTokens: 11))

        var nested = UsageSniffer(contentType: "text/event-stream")
        nested.consume(
            ByteBuffer(
                string:
                    "event: response.completed\ndata: {\"response\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}\n"
            ))
        #expect(nested.finish()?.totalTokens == 3)
    }

    @Test("answers without usage, event lines too long, or of other types report none")
    func noUsage() {
        var none = UsageSniffer(contentType: "text/event-stream")
        none.consume(ByteBuffer(string: "data: {\"usage\":null}\n\ndata: [DONE]\n\n"))
        #expect(none.finish() == nil)
        var long = UsageSniffer(contentType: "text/event-stream", lineLimit: 16)
        long.consume(ByteBuffer(string: #"data: {"usage":{"prompt_tokens":1,"#))
        long.consume(ByteBuffer(string: #""completion_tokens":1}}"#))
        #expect(long.finish() == nil)
        var audio = UsageSniffer(contentType: "audio/mpeg")
        audio.consume(ByteBuffer(string: #"{"usage":{"prompt_tokens":1}}"#))
        #expect(audio.finish() == nil)
    }

    @Test("hop-by-hop headers stay behind and the client's credentials are replaced")
    func forwardedHeaders() {
        let client = HTTPHeaders([
            ("Authorization", "Bearer client-token"), ("Content-Type", "application/json"),
            ("Connection", "keep-alive, X-Private"), ("X-Private", "secret"), ("OpenAI-Beta", "assistants=v2"),
            ("Accept-Encoding", "gzip"), ("Host", "proxy.local"), ("Expect", "100-continue"),
            ("Content-Length", "12"),
        ])
        let upstream = ForwardedHeaders.upstream(from: client, key: "sk-upstream", authority: "api.example.com")
        #expect(upstream["authorization"] == ["Bearer sk-upstream"])
        #expect(upstream["host"] == ["api.example.com"])
        #expect(upstream["content-type"] == ["application/json"])
        #expect(upstream["openai-beta"] == ["assistants=v2"])
        for dropped in ["connection", "x-private", "accept-encoding", "expect", "content-length"] {
            #expect(upstream[dropped].isEmpty, "\(dropped)")
        }
        // The length of the body as it is sent (it may have been rewritten), not the client's.
        let framed = ForwardedHeaders.upstream(
            from: client, key: "sk-upstream", authority: "api.example.com", contentLength: 40)
        #expect(framed["content-length"] == ["40"])
        #expect(framed.map(\.name).last == "content-length")

        let answer = HTTPHeaders([
            ("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked"),
            ("x-ratelimit-remaining-requests", "99"), ("Connection", "close"),
        ])
        let downstream = ForwardedHeaders.downstream(from: answer)
        #expect(downstream["content-type"] == ["text/event-stream"])
        #expect(downstream["x-ratelimit-remaining-requests"] == ["99"])
        #expect(downstream["transfer-encoding"].isEmpty)
        #expect(downstream["connection"].isEmpty)
    }

    @Test("a Connection header naming other headers drops them wherever they stand; the rest keep their order")
    func connectionListedHeaders() {
        let client = HTTPHeaders([
            ("X-Before", "1"), ("X-Private", "secret"), ("Accept", "application/json"),
            ("Connection", " x-private ,X-Other"), ("X-Other", "2"), ("X-After", "3"),
        ])
        let upstream = ForwardedHeaders.upstream(from: client, key: "sk-upstream", authority: "api.example.com")
        #expect(upstream.map(\.name) == ["host", "X-Before", "Accept", "X-After", "authorization"])

        let answer = HTTPHeaders([
            ("X-Hop", "1"), ("Content-Type", "application/json"), ("connection", "X-HOP"), ("Set-Cookie", "a=b"),
            ("x-request-id", "r"),
        ])
        #expect(ForwardedHeaders.downstream(from: answer).map(\.name) == ["Content-Type", "x-request-id"])
        // `keep-alive` and `close` name no header: nothing else is dropped.
        let plain = HTTPHeaders([("Connection", "Keep-Alive"), ("Keep-Alive", "timeout=5"), ("X-A", "1")])
        #expect(ForwardedHeaders.downstream(from: plain).map(\.name) == ["X-A"])
    }

    @Test("request ids are one process prefix and a hexadecimal counter")
    func requestIDs() throws {
        let ids = RequestIDs()
        let all = (1...300).map { _ in ids.next() }
        let prefix = try #require(all.first?.split(separator: "-").first)
        #expect(prefix.count == 16 && prefix.allSatisfy(\.isHexDigit))
        #expect(all[0] == prefix + "-1")
        #expect(all[15] == prefix + "-10")
        #expect(all[299] == prefix + "-12c")
        #expect(Set(all).count == 300)
        #expect(RequestIDs().next() != all[0])
    }

    @Test("the ASCII helpers compare and trim bytes, leaving other characters whole")
    func asciiHelpers() {
        #expect("Application/JSON; charset=utf-8".containsIgnoringASCIICase("json"))
        #expect("text/plain; x=jso".containsIgnoringASCIICase("json") == false)
        #expect("jsjson".containsIgnoringASCIICase("json"))
        #expect("".containsIgnoringASCIICase("json") == false)
        #expect("abc".containsIgnoringASCIICase(""))
        #expect("abc"[...].containsIgnoringASCIICase("bc"))
        #expect("Text/Event-Stream".hasPrefixIgnoringASCIICase("text/event-stream"))
        #expect("text/event".hasPrefixIgnoringASCIICase("text/event-stream") == false)
        #expect(" \t é token é \r\n".trimmingWhitespace() == "é token é")
        #expect("  \t ".trimmingWhitespace() == "")
        #expect("x"[...].trimmingWhitespace() == "x")
        #expect(RequestParsing.bearerToken("Bearer\tabc") == nil)
        #expect(RequestParsing.bearerToken("Bearer \t sk-é \r\n") == "sk-é")
    }

    @Test("only clean /v1 paths are forwarded, and bearer tokens are parsed strictly")
    func pathsAndTokens() {
        #expect(RequestParsing.upstreamPath("/v1/chat/completions") == "/chat/completions")
        #expect(RequestParsing.upstreamPath("/v1") == "")
        #expect(RequestParsing.upstreamPath("/v1/files/abc/content") == "/files/abc/content")
        #expect(RequestParsing.upstreamPath("/v1/models/gpt-4.1") == "/models/gpt-4.1")
        #expect(RequestParsing.upstreamPath("/v1/../admin") == nil)
        #expect(RequestParsing.upstreamPath("/v1/%2E%2e/admin") == nil)
        #expect(RequestParsing.upstreamPath("/v2/chat") == nil)
        #expect(RequestParsing.upstreamPath("/v1beta/models") == nil)
        #expect(RequestParsing.upstreamPath("/v") == nil)
        #expect(RequestParsing.upstreamPath("") == nil)
        // The handler passes the path as a slice of the request target.
        let target = "/v1/models/é?x=1"
        #expect(RequestParsing.upstreamPath(target[..<target.firstIndex(of: "?")!]) == "/models/é")
        #expect(RequestParsing.bearerToken("Bearer abc") == "abc")
        #expect(RequestParsing.bearerToken("bearer  abc ") == "abc")
        #expect(RequestParsing.bearerToken("BEARER abc") == "abc")
        #expect(RequestParsing.bearerToken("Basic abc") == nil)
        #expect(RequestParsing.bearerToken("Bearer") == nil)
        #expect(RequestParsing.bearerToken("Bearer ") == nil)
        #expect(RequestParsing.bearerToken(nil) == nil)
    }

    @Test("a top-level prompt_cache_key string is read in the same pass as the model; others are not")
    func promptCacheKey() {
        func fields(_ json: String) -> RequestFields {
            RequestParsing.fields(in: ByteBuffer(string: json), contentType: "application/json")
        }
        #expect(
            fields(#"{"model":"gpt-4o","prompt_cache_key":"team-\u0061"}"#)
                == RequestFields(model: .named("gpt-4o"), promptCacheKey: "team-a"))
        #expect(fields(#"{"prompt_cache_key":"k","model":"m"}"#).promptCacheKey == "k")
        // Not a string, or not at the top level: no affinity (the upstream judges the field).
        #expect(fields(#"{"model":"m","prompt_cache_key":7}"#).promptCacheKey == nil)
        #expect(fields(#"{"model":"m","metadata":{"prompt_cache_key":"k"}}"#).promptCacheKey == nil)
        #expect(fields(#"{"model":"m"}"#).promptCacheKey == nil)
        // A body rejected for its model keeps its reason.
        #expect(fields(#"{"model":"a","model":"b","prompt_cache_key":"k"}"#).model == .unreadable(.duplicateModel))
    }

    @Test("the model is read from JSON and multipart bodies; unreadable bodies are told apart")
    func model() {
        #expect(
            RequestParsing.model(
                in: ByteBuffer(string: #"{"model":"gpt-4o","messages":[]}"#), contentType: "application/json")
                == .named("gpt-4o"))
        #expect(
            RequestParsing.model(in: ByteBuffer(string: #"{"messages":[]}"#), contentType: "application/json")
                == .absent)
        #expect(
            RequestParsing.model(in: ByteBuffer(string: "model=x"), contentType: "multipart/form-data")
                == .unreadable(.malformedMultipart))
        #expect(RequestParsing.model(in: ByteBuffer(), contentType: "application/json") == .absent)
        #expect(RequestParsing.rejection(.tooDeep)?.code == "json_too_deep")
        #expect(RequestParsing.rejection(.malformedJSON)?.code == "invalid_json")
        #expect(RequestParsing.rejection(.duplicateModel)?.code == "duplicate_model")
        #expect(RequestParsing.rejection(.unknownContentType) == nil)
    }
}
