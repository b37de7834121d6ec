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

        @Test("start tightens an existing data directory to 0700 and its database and secret files to 0600")
        func dataDirectoryModes() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            let data = service.directory.file("data")
            // A directory made by hand under a loose umask, and files the CLI created there before any start.
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            chmod(data, 0o755)
            try service.addKeys([Self.randomKey()])
            try await service.start()
            #expect(await service.stop() == 0)
            let files = ["openai_proxy.db", "secret.key", "admin.token"].map { data + "/" + $0 }
            for path in files + [data + "/openai_proxy.db-wal", data + "/openai_proxy.db-shm"]
            where FileManager.default.fileExists(atPath: path) {
                chmod(path, 0o644)
            }
            chmod(data, 0o755)

            try await service.start()
            // The log still holds the first start's ready line: wait for the second one.
            #expect(await eventually { service.log.components(separatedBy: "openai-proxy ready").count == 3 })
            #expect(Self.mode(data) == 0o700)
            for path in files { #expect(Self.mode(path) == 0o600, "\(path)") }
            for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: service.databasePath + suffix) {
                #expect(Self.mode(service.databasePath + suffix) == 0o600, "\(suffix)")
            }
            #expect(service.log.contains("data directory permissions tightened: \(data): mode 755 -> 700"))
            #expect(service.log.contains("data directory permissions tightened: \(data)/admin.token: mode 644 -> 600"))
            #expect(await service.stop() == 0)
        }

        /// The permission bits of `path`.
        static func mode(_ path: String) -> mode_t? {
            var info = stat()
            return stat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
        }

        @Test("the admin server answers its own Host values and OPENAI_PROXY_ADMIN_HOSTS; any other Host gets 421")
        func hostAllowList() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(
                upstream: upstream.baseURL, workers: 1, extra: ["OPENAI_PROXY_ADMIN_HOSTS": "admin.example.test"])
            try await service.start()
            let port = service.adminPort
            for host in ["127.0.0.1:\(port)", "localhost:\(port)", "localhost", "[::1]:\(port)", "admin.example.test"] {
                let answer = try await TestHTTP.send(
                    .GET, service.adminURL + "/api/keys", token: service.adminToken, headers: ["host": host])
                #expect(answer.status == 200, "Host: \(host)")
            }
            for host in ["evil.example:\(port)", "attacker.test", "localhost.evil.example"] {
                for path in ["/api/keys", "/", "/healthz"] {
                    let answer = try await TestHTTP.send(
                        .GET, service.adminURL + path, token: service.adminToken, headers: ["host": host])
                    #expect(answer.status == 421, "Host: \(host) \(path)")
                    #expect((answer.json["error"] as? [String: Any])?["code"] as? String == "host_not_allowed")
                }
            }
            #expect(await service.stop() == 0)
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
