import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import Synchronization
import Testing

extension RealService {
    /// Clients that are slow or greedy on purpose: half-sent requests, more connections than a worker takes,
    /// more request bodies at once than a worker holds in memory.
    @Suite("Slow and greedy clients", .serialized)
    struct SlowClientTests {
        private let keys = ["sk-slow-test-aaaaaaaa-01", "sk-slow-test-bbbbbbbb-02"]

        private func running(
            workers: Int, _ extra: [String: String], _ body: (ProxyService, FakeUpstream, String) async throws -> Void
        ) async throws {
            try await ProxyService.serving(keys: keys, workers: workers, extra: extra, body)
        }

        private func usageRows(_ service: ProxyService, error: String) async throws -> Int {
            let database = try DatabaseQueue(path: service.databasePath)
            return try await database.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log WHERE error = ?", arguments: [error]) ?? 0
            }
        }

        @Test("300 heads without their body and 100 trickled heads all get 408 and are closed; others are served")
        func halfSentRequests() async throws {
            let timeouts = ["OPENAI_PROXY_CLIENT_HEADER_TIMEOUT": "2s", "OPENAI_PROXY_CLIENT_BODY_TIMEOUT": "2s"]
            try await running(workers: 2, timeouts) { service, _, token in
                // Half of them authenticated: those leave a usage row, the others none (no token is needed).
                let withoutBody = try (0..<300).map { index in
                    let connection = try RawConnection(port: service.proxyPort)
                    let authorization = index.isMultiple(of: 2) ? "Authorization: Bearer \(token)\r\n" : ""
                    connection.send(
                        "POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n\(authorization)"
                            + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
                    return connection
                }
                let trickled = try (0..<100).map { _ in
                    let connection = try RawConnection(port: service.proxyPort)
                    connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n")
                    return connection
                }
                #expect(try await TestHTTP.chat(service, token: token).status == 200)

                // A header line every 300 ms: were the head deadline moved by its bytes, these would never close.
                var lastLine = ContinuousClock.now
                let allClosed = await RawConnection.waitFor(withoutBody + trickled, timeout: .seconds(60)) {
                    $0.isClosed
                } tick: {
                    guard ContinuousClock.now - lastLine >= .milliseconds(300) else { return }
                    lastLine = ContinuousClock.now
                    for connection in trickled where !connection.isClosed { connection.send("X-Slow: 1\r\n") }
                }
                #expect(allClosed)
                let unanswered = withoutBody.filter {
                    !($0.text.hasPrefix("HTTP/1.1 408") && $0.text.contains(#""code":"client_timeout""#)
                        && $0.text.lowercased().contains("connection: close"))
                }
                #expect(
                    unanswered.isEmpty, "\(unanswered.count) without a 408, such as: \(unanswered.first?.text ?? "")")
                // A trickling client may find its next line refused by the closed socket before it reads the 408.
                #expect(trickled.allSatisfy { $0.text.isEmpty || $0.text.hasPrefix("HTTP/1.1 408") })
                #expect(trickled.contains { $0.text.hasPrefix("HTTP/1.1 408") })
                #expect(try await TestHTTP.chat(service, token: token).status == 200)
                // Usage rows: one per authenticated request whose body never came, none for the heads.
                #expect(await eventually { (try? await usageRows(service, error: "client_timeout")) == 150 })
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await usageRows(service, error: "client_timeout") == 150)
            }
        }

        @Test("past the per-worker connection cap, connections wait in the backlog and are served once one closes")
        func connectionCap() async throws {
            try await running(workers: 1, ["OPENAI_PROXY_WORKER_CONNECTIONS": "2"]) { service, _, _ in
                let health = "GET /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n"
                let held = try (0..<2).map { _ in try RawConnection(port: service.proxyPort) }
                for connection in held { connection.send(health) }
                #expect(
                    await RawConnection.waitFor(held, timeout: .seconds(30)) { $0.text.contains(#""status":"ok""#) })

                // The worker holds its cap: the kernel completes the connection (not refused), nobody accepts it.
                let waiting = try RawConnection(port: service.proxyPort)
                #expect(waiting.send(health))
                #expect(!(await RawConnection.waitFor([waiting], timeout: .seconds(2)) { !$0.text.isEmpty }))
                #expect(!waiting.isClosed)

                held[0].close()
                #expect(
                    await RawConnection.waitFor([waiting], timeout: .seconds(30)) {
                        $0.text.contains(#""status":"ok""#)
                    })
                #expect(waiting.text.hasPrefix("HTTP/1.1 200"))
                let reports = service.log.components(separatedBy: "connection cap reached").count - 1
                #expect(reports == 1, "\(service.log)")
            }
        }

        @Test("past the body budget, requests get 503 with Retry-After, none is lost, and the budget comes back")
        func bodyBudget() async throws {
            try await running(workers: 1, ["OPENAI_PROXY_BUFFERED_BODY_BYTES": "1MiB"]) { service, upstream, token in
                // Six bodies of 300 kB held by streams the upstream keeps open: at most three fit in 1 MiB.
                let content = String(repeating: "a", count: 300_000)
                let json = #"{"model":"gated","stream":true,"messages":[{"role":"user","content":"\#(content)"}]}"#
                let refused = Tally()
                let answers = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                    for _ in 0..<6 {
                        group.addTask {
                            let answer = try await TestHTTP.send(
                                .POST, service.proxyURL + "/v1/chat/completions", token: token, json: json)
                            if answer.status == 503 { refused.value.add(1, ordering: .relaxed) }
                            return answer
                        }
                    }
                    // Each request was either refused or reached the upstream: let the streams end.
                    let settled = await eventually(timeout: .seconds(30)) {
                        refused.value.load(ordering: .relaxed) + upstream.traffic.count == 6
                    }
                    upstream.release(event: 2)
                    #expect(settled)
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let busy = answers.filter { $0.status == 503 }
                #expect(answers.allSatisfy { $0.status == 200 || $0.status == 503 }, "\(answers.map(\.status))")
                #expect(busy.count >= 3)
                #expect(
                    busy.allSatisfy { $0.errorCode == "server_busy" && $0.headers.first(name: "retry-after") == "1" })
                #expect(answers.count(where: { $0.status == 200 }) == upstream.traffic.count)
                #expect(await eventually { (try? await usageRows(service, error: "server_busy")) == busy.count })

                // Every body was given back: one nearly the whole budget fits again.
                let large = String(repeating: "b", count: 1_040_000)
                let after = try await TestHTTP.send(
                    .POST, service.proxyURL + "/v1/chat/completions", token: token,
                    json: #"{"model":"gpt-test","messages":[{"role":"user","content":"\#(large)"}]}"#)
                #expect(after.status == 200, "\(after.body)")
            }
        }
    }
}

/// A count shared by a test's tasks.
private final class Tally: Sendable {
    let value = Atomic<Int>(0)
}
