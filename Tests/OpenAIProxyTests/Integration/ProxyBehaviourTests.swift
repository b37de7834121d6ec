import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import Testing

extension RealService {
    /// What clients and operators see of a running service: rotation, streaming, auth, live changes, usage.
    @Suite("Proxy behaviour", .serialized)
    struct ProxyBehaviourTests {
        private let keys = ["sk-proxy-test-aaaaaaaa-01", "sk-proxy-test-bbbbbbbb-02", "sk-proxy-test-cccccccc-03"]

        private func running(
            workers: Int = 2, _ body: (ProxyService, FakeUpstream, String) async throws -> Void
        ) async throws {
            try await ProxyService.serving(keys: keys, workers: workers, body)
        }

        @Test("3 keys, 2 workers, 300 requests from 8 concurrent clients: each key used 100 ± 2 times")
        func fairRotation() async throws {
            try await running { service, upstream, token in
                let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            var statuses: [Int] = []
                            for _ in 0..<(300 / 8 + 1) {
                                statuses.append(try await TestHTTP.chat(service, token: token).status)
                            }
                            return statuses
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }.prefix(300)
                }
                #expect(statuses.allSatisfy { $0 == 200 })
                // Only the admin console's own token learns which key served it.
                let answer = try await TestHTTP.chat(service, token: token)
                #expect(answer.status == 200 && answer.headers.first(name: "x-openai-proxy-key-id") == nil)
                let counts = upstream.keyCounts
                let total = counts.values.reduce(0, +)
                #expect(total == 8 * (300 / 8 + 1) + 1)
                // 305 requests were sent (8 × 38 + 1); the fairness bound is what matters.
                for key in keys {
                    let count = counts[key] ?? 0
                    #expect(abs(count * 300 - total * 100) <= 2 * total, "\(key): \(count) of \(total) — \(counts)")
                }
            }
        }

        @Test("each SSE event reaches the client before the upstream sends the next one")
        func streamsEventByEvent() async throws {
            try await running { service, upstream, token in
                var request = HTTPClientRequest(url: service.proxyURL + "/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "authorization", value: "Bearer \(token)")
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"model":"gated","stream":true}"#))
                upstream.release(event: 0)
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                #expect(response.status == .ok)
                #expect(response.headers.first(name: "content-type") == "text/event-stream")
                var received = ""
                var released = 0
                for try await chunk in response.body {
                    received += String(buffer: chunk)
                    // The upstream only sends event n+1 after we saw event n: a buffering proxy would stall here.
                    if received.contains("part\(released) "), released < 2 {
                        released += 1
                        upstream.release(event: released)
                    }
                }
                #expect(released == 2)
                #expect(received.contains("part2 ") && received.hasSuffix("data: [DONE]\n\n"))
            }
        }

        @Test("missing, wrong and revoked tokens get 401 JSON; a revoked token stops working while serving")
        func authentication() async throws {
            try await running { service, upstream, token in
                let missing = try await TestHTTP.chat(service, token: nil)
                #expect(missing.status == 401 && missing.errorCode == "invalid_api_key")
                let wrong = try await TestHTTP.chat(service, token: "sk-proxy-not-a-real-token")
                #expect(wrong.status == 401 && wrong.errorCode == "invalid_api_key")
                #expect(wrong.headers.first(name: "content-type") == "application/json")
                #expect(upstream.traffic.isEmpty, "rejected requests never reach the upstream")
                #expect(try await TestHTTP.chat(service, token: token).status == 200)
                let revoked = try service.cli(["tokens", "revoke", "1"])
                #expect(revoked.status == 0 && revoked.stdout.contains("revoked token 1"))
                let revokedAt = ContinuousClock.now
                #expect(await eventually { (try? await TestHTTP.chat(service, token: token).status) == 401 })
                print("measured: revocation seen after \(ContinuousClock.now - revokedAt)")
                let forwarded = upstream.traffic.count
                #expect(try await TestHTTP.chat(service, token: token).status == 401)
                #expect(upstream.traffic.count == forwarded)
            }
        }

        @Test("keys added, disabled and removed with the CLI while serving take effect without a restart")
        func liveKeyChanges() async throws {
            try await running { service, upstream, token in
                let added = try service.cli(
                    ["keys", "add", "--name", "late", "--value", "-"], stdin: "sk-proxy-test-dddddddd-04\n")
                #expect(added.status == 0 && added.stdout.contains("added key 4"))
                #expect(
                    await eventually {
                        upstream.reset()
                        for _ in 0..<4 { _ = try? await TestHTTP.chat(service, token: token) }
                        return upstream.keyCounts["sk-proxy-test-dddddddd-04"] != nil
                    })
                // Remove three keys: only the fourth remains in rotation.
                for id in 1...3 { #expect(try service.cli(["keys", "remove", "\(id)"]).status == 0) }
                #expect(
                    await eventually {
                        upstream.reset()
                        for _ in 0..<6 { _ = try? await TestHTTP.chat(service, token: token) }
                        return Set(upstream.keyCounts.keys) == ["sk-proxy-test-dddddddd-04"]
                    })
                let missing = try service.cli(["keys", "remove", "42"])
                #expect(missing.status == 1 && missing.stderr == "openai-proxy: no key with id 42\n")
            }
        }

        @Test("usage rows land in the database with tokens, key and client token")
        func usageRowsLand() async throws {
            try await running { service, _, token in
                for _ in 0..<6 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
                let stream = try await TestHTTP.send(
                    .POST, service.proxyURL + "/v1/chat/completions", token: token,
                    json: #"{"model":"streamer","stream":true,"stream_options":{"include_usage":true}}"#)
                #expect(stream.status == 200)
                _ = try await TestHTTP.chat(service, token: "sk-proxy-wrong")
                let database = try DatabaseQueue(path: service.databasePath)
                #expect(
                    await eventually {
                        (try? await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") })
                            == 7
                    })
                try await database.read { db in
                    let ok = try Row.fetchAll(db, sql: "SELECT * FROM usage_log WHERE status = 200 AND streamed = 0")
                    #expect(ok.count == 6)
                    #expect(
                        ok.allSatisfy {
                            $0["prompt_tokens"] == 11 && $0["completion_tokens"] == 7 && $0["token_id"] == 1
                        })
                    #expect(
                        ok.allSatisfy { ($0["model"] as String?) == "gpt-test" && ($0["ttfb_ms"] as Double?) != nil })
                    let streamed = try #require(try Row.fetchOne(db, sql: "SELECT * FROM usage_log WHERE streamed = 1"))
                    #expect(streamed["completion_tokens"] == 3)
                    #expect(streamed["model"] == "streamer")
                    // A request refused before a token was known is counted per minute, not logged as a row.
                    #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log WHERE status = 401") == 0)
                    #expect(try Int.fetchOne(db, sql: "SELECT SUM(usage_count) FROM keys") == 7)
                    #expect(try Int.fetchOne(db, sql: "SELECT SUM(requests) FROM usage_hourly") == 7)
                }
                let list = try service.cli(["keys", "list"])
                #expect(list.status == 0)
                #expect(list.stdout.contains("sk-…a-01"))
                #expect(!list.stdout.contains("aaaaaaaa"))
            }
        }

        @Test("an unreachable upstream answers 502 naming the host, at once")
        func upstreamDown() async throws {
            let closed = freePort()
            let service = ProxyService(upstream: "http://127.0.0.1:\(closed)/v1", workers: 1)
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start()
            let response = try await TestHTTP.chat(service, token: token)
            #expect(response.status == 502)
            #expect(response.errorCode == "upstream_unreachable")
            #expect(response.body.contains("127.0.0.1"))
            #expect(await service.stop() == 0)
        }
    }
}
