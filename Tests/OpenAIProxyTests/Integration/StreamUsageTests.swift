import Foundation
import GRDB
import NIOCore
import Testing

@testable import ProxyWorker

extension RealService {
    /// Exact token counts for streams whose client did not ask for usage.
    @Suite("Stream usage", .serialized)
    struct StreamUsageTests {
        @Test("a stream without include_usage: the upstream is asked for usage, the client gets its stream without it")
        func usageAskedAndStripped() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try service.addKeys(["sk-stream-usage-0000001"])
            let token = try service.createToken()
            try await service.start()

            let asked = try await TestHTTP.send(
                .POST, service.proxyURL + "/v1/chat/completions", token: token,
                json: #"{"model":"streamer","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(asked.status == 200)
            let sent = try #require(upstream.traffic.last?.body)
            #expect(sent.hasPrefix(#"{"stream_options":{"include_usage":true},"model":"streamer","stream":true"#))
            // The upstream's stream minus its usage event, byte for byte.
            let expected =
                (0..<3).map {
                    #"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"streamer","#
                        + #""choices":[{"index":0,"delta":{"content":"part\#($0) "},"finish_reason":null}]}"# + "\n\n"
                }.joined() + "data: [DONE]\n\n"
            #expect(asked.body == expected)

            // A client that asked for usage gets the usage event, and its request goes up as it was sent.
            let own = #"{"model":"streamer","stream":true,"stream_options":{"include_usage":true}}"#
            let kept = try await TestHTTP.send(
                .POST, service.proxyURL + "/v1/chat/completions", token: token, json: own)
            #expect(kept.body.contains(#""choices":[],"usage":{"prompt_tokens":11"#))
            #expect(upstream.traffic.last?.body == own)

            let database = try DatabaseQueue(path: service.databasePath)
            #expect(
                await eventually {
                    (try? await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") })
                        == 2
                })
            try await database.read { db in
                for row in try Row.fetchAll(db, sql: "SELECT * FROM usage_log") {
                    #expect(row["streamed"] == 1)
                    #expect(row["prompt_tokens"] == 11)
                    #expect(row["completion_tokens"] == 3)
                }
                // The default chat history (off) adds no row: a chat row is written in its usage row's transaction.
                #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chat_history") == 0)
            }
            #expect(await service.stop() == 0)
        }

        @Test("chat history full: the request's messages and the answer's text, streamed or not")
        func chatHistoryTexts() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(
                upstream: upstream.baseURL, workers: 1, extra: ["OPENAI_PROXY_CHAT_HISTORY": "full"])
            try service.addKeys(["sk-chat-history-000001"])
            let token = try service.createToken()
            try await service.start()
            #expect(try await TestHTTP.chat(service, token: token).status == 200)
            let streamed = try await TestHTTP.send(
                .POST, service.proxyURL + "/v1/chat/completions", token: token,
                json: #"{"model":"streamer","stream":true,"messages":[{"role":"user","content":"tell me"}]}"#)
            #expect(streamed.status == 200)
            let database = try DatabaseQueue(path: service.databasePath)
            #expect(
                await eventually {
                    (try? await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chat_history") })
                        == 2
                })
            let rows = try await database.read { db in
                try Row.fetchAll(db, sql: "SELECT request, response, streamed FROM chat_history ORDER BY id")
            }
            #expect(rows.first?["request"] == #"[{"role":"user","content":"hi"}]"#)
            #expect(rows.first?["response"] == "hello from upstream")
            #expect(rows.last?["request"] == #"[{"role":"user","content":"tell me"}]"#)
            #expect(rows.last?["response"] == "part0 part1 part2 ")
            #expect(rows.last?["streamed"] == 1)
            #expect(await service.stop() == 0)
        }

        @Test("requests are rewritten only when streamed and not asking for usage already")
        func rewriting() throws {
            func rewrite(_ text: String) -> String? {
                StreamUsage.requestingUsage(ByteBuffer(string: text)).map { String(buffer: $0) }
            }
            #expect(rewrite(#"{"model":"m","stream":false}"#) == nil)
            #expect(rewrite(#"{"model":"m"}"#) == nil)
            #expect(rewrite(#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#) == nil)
            #expect(rewrite("not json \"stream\"") == nil)
            #expect(rewrite(#" {"stream":true}"#) == #" {"stream_options":{"include_usage":true},"stream":true}"#)
            let changed = try #require(rewrite(#"{"stream":true,"stream_options":{"include_usage":false,"x":1}}"#))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(changed.utf8)) as? [String: Any])
            #expect((object["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
            #expect((object["stream_options"] as? [String: Any])?["x"] as? Int == 1)

            let usage = #"data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
            let chunk = #"data: {"choices":[{"delta":{"content":"a"}}],"usage":null}"#
            let stream = chunk + "\n\n" + usage + "\n\n" + "data: [DONE]\n\n"
            #expect(
                String(buffer: StreamUsage.withoutUsageEvents(ByteBuffer(string: stream))) == chunk
                    + "\n\ndata: [DONE]\n\n"
            )
            let untouched = ByteBuffer(string: chunk + "\r\n\r\n")
            #expect(StreamUsage.withoutUsageEvents(untouched) == untouched)
        }
    }
}
