import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

extension RealService {
    @Suite("Admin API on the real service", .serialized)
    struct AdminServiceTests {
        /// A key value no other text will contain by chance.
        static func randomKey() -> String {
            let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
            return "sk-" + String((0..<40).map { _ in alphabet.randomElement()! })
        }

        /// Every 8-character piece of `value`.
        static func pieces(_ value: String) -> [String] {
            let characters = Array(value)
            return (0...(characters.count - 8)).map { String(characters[$0..<($0 + 8)]) }
        }

        /// The files of the database (and its WAL and shared-memory files, when present) as text.
        static func databaseFiles(_ service: ProxyService) -> [(String, String)] {
            ["", "-wal", "-shm"].compactMap { suffix in
                let path = service.databasePath + suffix
                return FileManager.default.contents(atPath: path).map { (path, String(decoding: $0, as: UTF8.self)) }
            }
        }

        @Test(
            "chat goes through the proxy path; no key value or 8-character piece of one leaves the service or rests in plaintext"
        )
        func chatAndNoLeaks() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, extra: ["LOG_LEVEL": "debug"])
            try await service.start()
            let admin = service.adminURL
            let token = service.adminToken
            let keys = (0..<3).map { _ in Self.randomKey() }
            var seen: [String] = []
            func send(_ method: HTTPMethod, _ path: String, _ json: String? = nil) async throws -> TestResponse {
                let response = try await TestHTTP.send(method, admin + path, token: token, json: json)
                seen.append(response.body)
                return response
            }

            #expect(try await send(.POST, "/api/keys", #"{"name":"one","key_value":"\#(keys[0])"}"#).status == 201)
            let imported = try await send(
                .POST, "/api/keys/import", #"{"keys":["\#(keys[1])","\#(keys[2])","\#(keys[0])"]}"#)
            #expect(imported.json["added"] as? Int == 2)
            #expect(imported.json["duplicate"] as? Int == 1)
            #expect(try await send(.POST, "/api/keys", #"{"name":"again","key_value":"\#(keys[1])"}"#).status == 409)
            #expect(try await send(.GET, "/api/models?refresh=true").status == 200)

            let chat = #"{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}"#
            let answered = await eventually(timeout: .seconds(10)) {
                (try? await send(.POST, "/api/chat", chat).status) == 200
            }
            #expect(answered, "chat through the proxy")
            let plain = try await send(.POST, "/api/chat", chat)
            #expect(plain.body.contains("hello from upstream"))
            // The browser learns which key served it.
            let servedPlain = try #require(plain.headers.first(name: "x-openai-proxy-key-id").flatMap { Int($0) })
            #expect((1...3).contains(servedPlain))
            let streamed = try await send(
                .POST, "/api/chat", #"{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"go"}]}"#)
            #expect(streamed.status == 200)
            #expect(streamed.headers.first(name: "content-type") == "text/event-stream")
            #expect(streamed.body.contains("part2") && streamed.body.contains("data: [DONE]"))
            let servedStream = try #require(streamed.headers.first(name: "x-openai-proxy-key-id").flatMap { Int($0) })
            let chats = upstream.requests.filter { $0.path == "/v1/chat/completions" }
            #expect(
                chats.allSatisfy { keys.map { "Bearer \($0)" }.contains($0.authorization ?? "") }, "upstream keys used")

            // The console records a streamed conversation once the stream has ended, so it may land just
            // after the client read the last event: wait for it.
            var conversations: [[String: Any]] = []
            let recorded = await eventually {
                let history = try? await send(.GET, "/api/chat/history?limit=10")
                conversations = (history?.json["data"] as? [[String: Any]]) ?? []
                return conversations.compactMap { $0["response"] as? String }.first == "part0 part1 part2 "
            }
            #expect(recorded, "\(conversations)")
            let responses = conversations.compactMap { $0["response"] as? String }
            #expect(
                responses.prefix(3) == ["part0 part1 part2 ", "hello from upstream", "hello from upstream"],
                "\(conversations)")
            // Each conversation names the key that served it, by id and current name.
            #expect(conversations.prefix(2).map { $0["key_id"] as? Int } == [servedStream, servedPlain])
            let names = Set(["one", "imported-1", "imported-2"])
            #expect(conversations.prefix(3).allSatisfy { names.contains($0["key_name"] as? String ?? "") })
            let first = try #require(
                conversations.first { $0["response"] as? String == "hello from upstream" }?["id"] as? Int)
            #expect(try await send(.GET, "/api/chat/history/\(first)").json["model"] as? String == "gpt-test")

            let usage = await eventually(timeout: .seconds(10)) {
                ((try? await send(.GET, "/api/usage").json["total"] as? Int) ?? 0) >= 3
            }
            #expect(usage, "the console's requests are in the request log")
            // The console's conversations are kept once, by the admin server: the collector, which has now
            // stored their request-log rows, adds no chat rows of its own for the console's token.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await send(.GET, "/api/chat/history?limit=10").json["total"] as? Int == 3)
            for path in [
                "/api/keys", "/api/keys/1", "/api/tokens", "/api/models", "/api/stats/overview", "/api/stats/keys",
                "/api/stats/usage?period=today", "/api/stats/models", "/api/stats/hourly", "/api/audit",
                "/api/settings",
                "/api/auth/session", "/api/openapi.json",
            ] {
                #expect(try await send(.GET, path).status == 200, "\(path)")
            }
            let running = Self.databaseFiles(service)
            #expect(await service.stop() == 0)
            let texts = seen + [service.log] + (running + Self.databaseFiles(service)).map(\.1)
            #expect(running.contains { $0.0.hasSuffix("-wal") }, "the WAL file was checked")
            for key in keys {
                for piece in Self.pieces(key) {
                    #expect(!texts.contains { $0.contains(piece) }, "a piece of an upstream key leaked: \(piece)")
                }
            }
        }
    }
}
