import Foundation
import GRDB
import NIOCore
import NIOPosix
import Testing

extension RealService {
    /// A pool that keeps serving while keys fail, and heals by itself: the real service against a fake
    /// upstream that answers per key.
    @Suite("Key health and failover", .serialized)
    struct KeyHealthTests {
        private let good = "sk-health-good-00000001"
        private let bad = "sk-health-bad-000000002"
        private let limited = "sk-health-limited-00003"
        private let flaky = "sk-health-flaky-0000004"

        /// Key id → (status, reason), read from the service's database.
        private func states(_ service: ProxyService) throws -> [String: (status: String, reason: String?)] {
            try DatabaseQueue(path: service.databasePath).read { db in
                var states: [String: (String, String?)] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT name, status, status_reason FROM keys") {
                    states[row["name"]] = (row["status"], row["status_reason"])
                }
                return states
            }
        }

        private func events(_ service: ProxyService, key name: String) throws -> [Row] {
            try DatabaseQueue(path: service.databasePath).read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT e.* FROM key_events e JOIN keys k ON k.id = e.key_id WHERE k.name = ? ORDER BY e.id
                        """,
                    arguments: [name])
            }
        }

        private func chatCount(_ upstream: FakeUpstream) -> Int {
            upstream.requests.filter { $0.path == "/v1/chat/completions" }.count
        }

        @Test(
            "keys {good, bad→401, limited→429 Retry-After 2, flaky→500}, 2 workers: 200 requests all succeed, attempts ≤ 1.3×"
        )
        func mixedPool() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            upstream.behave(.unauthorized, for: bad)
            upstream.behave(.rateLimited(retryAfter: "2"), for: limited)
            upstream.behave(.failing, for: flaky)
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            try service.cli(["keys", "add", "--name", "good", "--value", good])
            try service.cli(["keys", "add", "--name", "bad", "--value", bad])
            try service.cli(["keys", "add", "--name", "limited", "--value", limited])
            try service.cli(["keys", "add", "--name", "flaky", "--value", flaky])
            let token = try service.createToken()
            try await service.start()
            // Every key was probed as it was added (or by the service right after): the pool knows what
            // the upstream said of each before traffic starts, as it would in production.
            #expect(
                try await eventually {
                    try await DatabaseQueue(path: service.databasePath).read { db in
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM keys WHERE last_probe_at IS NOT NULL") == 4
                    }
                })

            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var statuses: [Int] = []
                        for _ in 0..<50 { statuses.append(try await TestHTTP.chat(service, token: token).status) }
                        return statuses
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(statuses.count == 200)
            #expect(
                statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
            if !statuses.allSatisfy({ $0 == 200 }) { print(service.log) }
            let attempts = chatCount(upstream)
            print("mixed pool: \(attempts) upstream attempts for 200 requests (\(Double(attempts) / 200)×)")
            #expect(attempts <= 260, "upstream attempts \(attempts) for 200 requests")

            // bad: invalid at its first failure, one event, for a 401.
            let badEvents = try events(service, key: "bad")
            #expect(badEvents.count == 1)
            #expect(badEvents.first?["to_status"] == "invalid")
            #expect(badEvents.first?["status_code"] == 401)
            #expect(try states(service)["bad"]?.status == "invalid")
            // flaky: cooling after 3 transient failures in a row.
            let flakyEvents = try events(service, key: "flaky")
            #expect(flakyEvents.first?["to_status"] == "cooling")
            #expect((flakyEvents.first?["reason"] as String?)?.hasPrefix("3 failures in a row") == true)
            // limited: cooling at its 429, back about 2 s later with no operator action.
            #expect(
                try await eventually(timeout: .seconds(15)) {
                    try events(service, key: "limited").contains { $0["to_status"] == "active" }
                })
            let limitedEvents = try events(service, key: "limited")
            let cooled = try #require(limitedEvents.first { $0["to_status"] == "cooling" })
            let back = try #require(limitedEvents.first { $0["to_status"] == "active" })
            #expect((cooled["reason"] as String?)?.contains("retry after 2 s") == true)
            let away = (back["ts"] as Int64) - (cooled["ts"] as Int64)
            print("limited: back in rotation \(away) ms after its 429")
            #expect(away >= 1900)
            #expect(back["reason"] == "cool-down over")

            // The key list shows the states.
            let list = try service.cli(["keys", "list"])
            #expect(list.stdout.contains("invalid (probe in"))
            #expect(!list.stdout.contains("000000002"))
            #expect(await service.stop() == 0)

            // States survive a restart of the whole service: bad gets no request after it.
            let before = upstream.count(key: bad, path: "/v1/chat/completions")
            try await service.start()
            #expect(try states(service)["bad"]?.status == "invalid")
            for _ in 0..<10 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            #expect(upstream.count(key: bad, path: "/v1/chat/completions") == before)
            #expect(await service.stop() == 0)
        }

        @Test("a 401 key fixed upstream comes back at its next probe")
        func invalidKeyComesBack() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            upstream.behave(.unauthorized, for: bad)
            let service = ProxyService(
                upstream: upstream.baseURL, workers: 1, extra: ["OPENAI_PROXY_INVALID_PROBE_INTERVAL": "2s"])
            try service.cli(["keys", "add", "--name", "bad", "--value", bad])
            let token = try service.createToken()
            try await service.start()
            #expect(try await eventually { try states(service)["bad"]?.status == "invalid" })
            let refused = try await TestHTTP.chat(service, token: token)
            #expect(refused.status == 503)
            #expect(refused.errorCode == "no_available_key")
            #expect(Int(refused.headers.first(name: "retry-after") ?? "") != nil)

            upstream.behave(.normal, for: bad)
            #expect(try await eventually(timeout: .seconds(15)) { try states(service)["bad"]?.status == "active" })
            let back = try #require(try events(service, key: "bad").last)
            #expect(back["from_status"] == "invalid")
            #expect(back["reason"] == "probe succeeded")
            #expect(try await eventually { try await TestHTTP.chat(service, token: token).status == 200 })
            #expect(await service.stop() == 0)
        }

        @Test("every key failing: 503 with Retry-After at once, no hang; a 429 storm costs the upstream few attempts")
        func everyKeyFailing() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let values = ["sk-health-storm-0000001", "sk-health-storm-0000002", "sk-health-storm-0000003"]
            for value in values { upstream.behave(.rateLimited(retryAfter: "4"), for: value) }
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            for (index, value) in values.enumerated() {
                try service.cli(["keys", "add", "--name", "storm\(index)", "--value", value, "--no-probe"])
            }
            let token = try service.createToken()
            try await service.start()
            var answers: [TestResponse] = []
            let started = ContinuousClock.now
            for _ in 0..<20 { answers.append(try await TestHTTP.chat(service, token: token)) }
            print("every key failing: 20 answers in \(ContinuousClock.now - started)")
            #expect(answers.allSatisfy { $0.status == 503 && $0.errorCode == "no_available_key" })
            let waits = answers.compactMap { $0.headers.first(name: "retry-after").flatMap(Int.init) }
            #expect(waits.count == 20)
            #expect(waits.allSatisfy { (1...4).contains($0) }, "\(waits)")
            // Each key is tried until it is known to be cooling: at most once per key and worker (and prober).
            #expect(chatCount(upstream) <= values.count * 2)

            // A storm: every key answers 429 with Retry-After 1 s; 4 clients for 3 s.
            for value in values { upstream.behave(.rateLimited(retryAfter: "1"), for: value) }
            try await Task.sleep(for: .milliseconds(4500))
            upstream.reset()
            let end = ContinuousClock.now + .seconds(3)
            let sent = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var sent = 0
                        while ContinuousClock.now < end {
                            let answer = try await TestHTTP.chat(service, token: token)
                            #expect(answer.status == 503 || answer.status == 429)
                            sent += 1
                        }
                        return sent
                    }
                }
                return try await group.reduce(0, +)
            }
            let attempts = chatCount(upstream)
            print("429 storm: \(attempts) upstream attempts for \(sent) requests (\(Double(attempts) / Double(sent))×)")
            #expect(attempts < sent)
            #expect(await service.stop() == 0)
        }

        @Test("a stream reset after 3 events: the client gets those 3 events, then an error event; no retry")
        func streamResetMidway() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let values = ["sk-health-reset-0000001", "sk-health-reset-0000002"]
            for value in values { upstream.behave(.resetAfter(events: 3), for: value) }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try service.addKeys(values)
            let token = try service.createToken()
            try await service.start()
            let response = try await TestHTTP.send(
                .POST, service.proxyURL + "/v1/chat/completions", token: token,
                json: #"{"model":"gpt-test","stream":true,"messages":[]}"#)
            #expect(response.status == 200)
            let events = response.body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.count == 4, "\(response.body)")
            for index in 0..<3 { #expect(events[index].contains("\"part\(index) \"")) }
            #expect(events.last?.hasPrefix("data: {\"error\":") == true)
            #expect(events.last?.contains("upstream_stream_error") == true)
            #expect(!response.body.contains("[DONE]"))
            #expect(chatCount(upstream) == 1, "no retry once bytes reached the client")
            #expect(await service.stop() == 0)
        }

        @Test("a client that disconnects mid-stream cancels the upstream request; its row says client_cancelled")
        func clientDisconnect() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try service.addKeys([good])
            let token = try service.createToken()
            try await service.start()
            upstream.release(event: 0)
            let body = #"{"model":"gated","stream":true,"messages":[]}"#
            let request =
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
            let seen = try await RawHTTP.readUntil(port: service.proxyPort, request: request, marker: "part0") {
                // While the stream runs, the upstream holds the worker's connection.
                #expect(establishedConnections(localPort: upstream.port) == 1)
            }
            #expect(seen.contains("part0"))
            #expect(
                try await eventually {
                    try await DatabaseQueue(path: service.databasePath).read { db in
                        try String.fetchOne(db, sql: "SELECT error FROM usage_log WHERE streamed = 1")
                            == "client_cancelled"
                    }
                })
            // No usage event arrived: what was streamed (one event) is recorded, marked as estimated.
            let row = try await DatabaseQueue(path: service.databasePath).read { db in
                try Row.fetchOne(
                    db, sql: "SELECT completion_tokens, tokens_estimated FROM usage_log WHERE streamed = 1")
            }
            #expect(row?["completion_tokens"] == 1)
            #expect(row?["tokens_estimated"] == 1)
            // The proxy closed its upstream connection as the client went (the upstream sees no open connection).
            #expect(await eventually(timeout: .seconds(1)) { establishedConnections(localPort: upstream.port) == 0 })
            #expect(await service.stop() == 0)
        }

        @Test("with rate-limit headers saying one key has 0 requests left, the next requests avoid it")
        func rateLimitHeadroom() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let spent = "sk-health-spent-0000001"
            let fresh = "sk-health-fresh-0000002"
            upstream.behave(.rateLimitHeaders(remainingRequests: 0, remainingTokens: 5000, reset: "1m"), for: spent)
            upstream.behave(.rateLimitHeaders(remainingRequests: 99, remainingTokens: 5000, reset: "1m"), for: fresh)
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            try service.addKeys([spent, fresh])
            let token = try service.createToken()
            try await service.start()
            // Until every worker used the spent key once, or heard of it from the others through the database.
            #expect(
                try await eventually {
                    _ = try await TestHTTP.chat(service, token: token)
                    return try await DatabaseQueue(path: service.databasePath).read { db in
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM keys WHERE rl_remaining_requests = 0") == 1
                    }
                })
            try await Task.sleep(for: .milliseconds(600))
            let before = upstream.count(key: spent, path: "/v1/chat/completions")
            for _ in 0..<20 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            #expect(upstream.count(key: spent, path: "/v1/chat/completions") == before)
            let list = try service.cli(["keys", "list"])
            #expect(list.stdout.contains("0 req / 5000 tok"))
            #expect(await service.stop() == 0)
        }

        @Test("a key that sends nothing before the first-byte deadline is failed over; model no key reaches → 404")
        func firstByteDeadlineAndModels() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let slow = "sk-health-slow-00000001"
            let quick = "sk-health-quick-0000002"
            upstream.behave(.slowFirstByte(.seconds(5)), for: slow)
            upstream.models(["gpt-test", "only-slow"], for: slow)
            upstream.models(["gpt-test"], for: quick)
            let service = ProxyService(
                upstream: upstream.baseURL, workers: 1,
                extra: ["OPENAI_PROXY_FIRST_BYTE_TIMEOUT": "300ms", "OPENAI_PROXY_CONNECT_TIMEOUT": "2s"])
            try service.addKeys([slow, quick])
            let token = try service.createToken()
            try await service.start()
            for _ in 0..<4 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            #expect(upstream.count(key: quick, path: "/v1/chat/completions") == 4)
            // Once the prober learned the models of both keys, a model neither reaches is refused here.
            #expect(
                try await eventually {
                    try await DatabaseQueue(path: service.databasePath).read { db in
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM keys WHERE models IS NOT NULL") == 2
                    }
                })
            try await Task.sleep(for: .milliseconds(600))
            let missing = try await TestHTTP.chat(service, token: token, model: "no-such-model")
            #expect(missing.status == 404)
            #expect(missing.errorCode == "model_not_found")
            #expect(await service.stop() == 0)
        }

        @Test("keys test probes a key now and prints status, latency, models and the state change")
        func keysTestCommand() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            upstream.behave(.unauthorized, for: bad)
            upstream.behave(.unauthorized, for: bad + "x")
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            let added = try service.cli(["keys", "add", "--name", "good", "--value", good])
            #expect(added.stdout.contains("active; probe: ok"))
            try service.cli(["keys", "add", "--name", "bad", "--value", bad, "--no-probe"])
            let ok = try service.cli(["keys", "test", "1"])
            #expect(ok.status == 0)
            #expect(ok.stdout.contains("key 1: ok (200)"))
            #expect(ok.stdout.contains("\(FakeUpstream.defaultModels.count) models"))
            let failed = try service.cli(["keys", "test", "2"])
            #expect(failed.status == 1)
            #expect(failed.stdout.contains("401: fake upstream: invalid_api_key"))
            #expect(failed.stdout.contains("active → invalid"))
            #expect(try states(service)["bad"]?.status == "invalid")
            // Added while the upstream refuses it: stored as invalid at once.
            let refused = try service.cli(["keys", "add", "--name", "bad2", "--value", bad + "x"])
            #expect(refused.status == 0)
            #expect(refused.stdout.contains("invalid; probe: 401"))
            let missing = try service.cli(["keys", "test", "9"])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("no key with id 9"))
        }
    }
}

extension RawHTTP {
    /// Sends `request` on a new connection, reads until `marker` arrived, then closes the connection.
    static func readUntil(
        port: Int, request: String, marker: String, whileOpen: () throws -> Void = {}
    ) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var received = ""
            for try await chunk in inbound {
                received += String(buffer: chunk)
                if received.contains(marker) { break }
            }
            try whileOpen()
            return received
        }
    }
}

/// TCP connections in state ESTABLISHED whose local port is `localPort`, from /proc/net/tcp and tcp6.
func establishedConnections(localPort: Int) -> Int {
    var count = 0
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // procfs files report size 0: read to the end rather than by size.
        guard let data = FileHandle(forReadingAtPath: table)?.readDataToEndOfFile() else { continue }
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 3, let port = fields[1].split(separator: ":").last.flatMap({ Int($0, radix: 16) })
            else { continue }
            if port == localPort && fields[3] == "01" { count += 1 }
        }
    }
    return count
}
