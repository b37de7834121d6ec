import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ProcessSupervisor
import ServiceLifecycle
import Testing

@testable import ProxyWorker
@testable import Shared

/// The worker's HTTP server in this process, on a real socket, against a real fake upstream.
@Suite("Proxy server", .timeLimit(.minutes(1)))
struct ProxyServerTests {
    struct Fixture {
        let test: TestDatabase
        let usage: UsageSender
        let store: SnapshotStore
        let core: WorkerContext
        let token: String
        let url: String
        /// The worker's group (the server and the key-health writer) and its run.
        let group: ServiceGroup
        let running: Task<Void, any Error>
    }

    private func withServer(
        upstream: String, maxBodyBytes: Int = 4096, drainLimit: Duration = .seconds(18),
        _ body: (Fixture) async throws -> Void
    ) async throws {
        let test = try TestDatabase()
        _ = try await test.keys.add(name: "a", value: "sk-router-aaaaaaaa-0001")
        _ = try await test.keys.add(name: "b", value: "sk-router-bbbbbbbb-0002")
        let (_, token) = try await test.tokens.create(name: "client")
        let logger = Logger(label: "test")
        let store = SnapshotStore(
            defaults: RequestSettings(
                maxBodyBytes: maxBodyBytes, firstByteTimeout: .seconds(30), connectTimeout: nil,
                selector: KeySelector(strategy: .roundRobin, database: test.database), maxAttempts: 3))
        store.replace(with: try await RoutingSnapshot.load(from: test.database, box: test.box, logger: logger))
        let usage = UsageSender(socketPath: test.directory.file("absent.sock"), logger: logger)
        let base = try #require(UpstreamBaseURL(parsing: upstream))
        let core = WorkerContext(
            worker: 7, upstream: base, snapshots: store,
            health: KeyHealthBoard(
                store: KeyHealthStore(database: test.database, policy: KeyHealthPolicy(), logger: logger),
                logger: logger),
            usage: usage,
            rateWindows: TokenRateWindows(database: test.database),
            pools: try await UpstreamPools(
                group: MultiThreadedEventLoopGroup.singleton, target: try UpstreamTarget(base),
                connectTimeout: .seconds(5), readTimeout: .seconds(30)),
            logger: logger)
        let socket = try ListeningSocket.bind(ListenAddress(host: "127.0.0.1", port: 0))
        var server = ProxyServer(descriptor: socket.descriptor, core: core, onServing: {})
        server.drainLimit = drainLimit
        let group = ServiceGroup(configuration: .init(services: [core.health, server], logger: logger))
        let running = Task { try await group.run() }
        let fixture = Fixture(
            test: test, usage: usage, store: store, core: core, token: token,
            url: "http://127.0.0.1:\(socket.address.port)", group: group, running: running)
        do {
            try await body(fixture)
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await group.triggerGracefulShutdown()
        try await running.value
    }

    private func chat(
        _ fixture: Fixture, token: String?, model: String = "gpt-test", stream: Bool = false
    )
        async throws -> TestResponse
    {
        try await TestHTTP.send(
            .POST, fixture.url + "/v1/chat/completions", token: token,
            json: #"{"model":"\#(model)","stream":\#(stream),"messages":[]}"#)
    }

    @Test("requests are forwarded with the upstream key in turn, and each leaves a usage row")
    func forwards() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL) { fixture in
            for _ in 0..<4 {
                let response = try await chat(fixture, token: fixture.token)
                #expect(response.status == 200)
                #expect(response.body.contains("hello from upstream"))
            }
            #expect(
                upstream.requests.map(\.authorization) == [
                    "Bearer sk-router-aaaaaaaa-0001", "Bearer sk-router-bbbbbbbb-0002",
                    "Bearer sk-router-aaaaaaaa-0001", "Bearer sk-router-bbbbbbbb-0002",
                ])
            #expect(upstream.requests.allSatisfy { $0.path == "/v1/chat/completions" })
            let rows = fixture.usage.queued
            #expect(rows.count == 4)
            #expect(rows.allSatisfy { $0.status == 200 && $0.model == "gpt-test" && $0.worker == 7 })
            #expect(rows.allSatisfy { $0.promptTokens == 11 && $0.completionTokens == 7 && $0.totalTokens == 18 })
            #expect(rows.map(\.keyID) == [1, 2, 1, 2])
            #expect(rows.allSatisfy { $0.ttfbMs != nil && $0.latencyMs >= $0.ttfbMs! })
            #expect(Set(rows.map(\.requestID)).count == 4)
        }
    }

    @Test("query strings pass through and streamed answers carry their usage")
    func queryAndStream() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL) { fixture in
            let echo = try await TestHTTP.send(.GET, fixture.url + "/v1/echo?limit=2&after=x%20y", token: fixture.token)
            #expect(echo.status == 200)
            #expect(echo.headers.first(name: "x-upstream-seen-query") == "limit=2&after=x%20y")
            let stream = try await TestHTTP.send(
                .POST, fixture.url + "/v1/chat/completions", token: fixture.token,
                json: #"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#)
            #expect(stream.headers.first(name: "content-type") == "text/event-stream")
            #expect(stream.body.contains("part0") && stream.body.contains("part2"))
            #expect(stream.body.hasSuffix("data: [DONE]\n\n"))
            let streamed = try #require(fixture.usage.queued.last)
            #expect(streamed.streamed)
            #expect(streamed.completionTokens == 3)
        }
    }

    @Test("missing, unknown and malformed tokens get 401 in OpenAI's format, and nothing goes upstream")
    func unauthorized() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL) { fixture in
            for token: String? in [nil, "sk-proxy-unknown", ""] {
                let response = try await chat(fixture, token: token)
                #expect(response.status == 401)
                #expect(response.headers.first(name: "www-authenticate") == "Bearer")
                let error = try #require(response.json["error"] as? [String: Any])
                #expect(error["code"] as? String == "invalid_api_key")
                #expect(error["type"] as? String == "invalid_request_error")
                #expect(error.keys.sorted() == ["code", "message", "param", "type"])
            }
            #expect(upstream.requests.isEmpty)
            // Counted per minute and reason instead of a usage row each.
            #expect(fixture.usage.queued.isEmpty)
            let counts = fixture.core.refused.take(now: WallClock.nowMs())
            #expect(counts.filter { $0.reason == .missingToken }.map(\.count).reduce(0, +) == 1)
            #expect(counts.filter { $0.reason == .invalidToken }.map(\.count).reduce(0, +) == 2)
        }
    }

    @Test("oversized bodies get 413 whether or not they declare their length")
    func tooLarge() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL, maxBodyBytes: 1024) { fixture in
            let big = #"{"model":"m","pad":""# + String(repeating: "x", count: 2000) + #""}"#
            let declared = try await TestHTTP.send(
                .POST, fixture.url + "/v1/chat/completions", token: fixture.token, json: big)
            #expect(declared.status == 413)
            #expect(declared.errorCode == "request_too_large")
            // Chunked, so the length is only known while reading.
            var request = HTTPClientRequest(url: fixture.url + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(fixture.token)")
            let chunks = AsyncStream<ByteBuffer> { continuation in
                continuation.yield(ByteBuffer(string: String(big.prefix(800))))
                continuation.yield(ByteBuffer(string: String(big.dropFirst(800))))
                continuation.finish()
            }
            request.body = .stream(chunks, length: .unknown)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            #expect(response.status == .payloadTooLarge)
            #expect(upstream.requests.isEmpty)
        }
    }

    @Test("an unreachable upstream gives 502 naming the host; unknown and unclean paths do not go upstream")
    func upstreamDown() async throws {
        try await withServer(upstream: "http://127.0.0.1:\(freePort())/v1") { fixture in
            let response = try await chat(fixture, token: fixture.token)
            #expect(response.status == 502)
            #expect(response.errorCode == "upstream_unreachable")
            #expect(response.body.contains("127.0.0.1") && response.body.contains("connection refused"))
            let dots = try await TestHTTP.send(.GET, fixture.url + "/v1/%2e%2e/admin", token: fixture.token)
            #expect(dots.status == 400 && dots.errorCode == "invalid_path")
            let unknown = try await TestHTTP.send(.GET, fixture.url + "/admin")
            #expect(unknown.status == 404 && unknown.errorCode == "not_found")
            let health = try await TestHTTP.send(.GET, fixture.url + "/healthz")
            #expect(health.status == 200 && health.body == #"{"status":"ok","worker":7}"#)
        }
    }

    @Test("with no active key the answer is 503 in OpenAI's format")
    func noKeys() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL) { fixture in
            _ = try await fixture.test.keys.setStatus(id: 1, .disabled)
            _ = try await fixture.test.keys.setStatus(id: 2, .disabled)
            // The fixture's snapshot is static; reload it as the refresher would.
            let snapshot = try await RoutingSnapshot.load(
                from: fixture.test.database, box: fixture.test.box, logger: Logger(label: "test"))
            #expect(snapshot.keys.isEmpty)
            fixture.store.replace(with: snapshot)
            let response = try await chat(fixture, token: fixture.token)
            #expect(response.status == 503 && response.errorCode == "no_available_key")
            #expect(upstream.requests.isEmpty)
        }
    }

    @Test("a client that expects 100-continue is told to go on once its request is accepted, and only then")
    func expectContinue() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL) { fixture in
            let port = try #require(Int(fixture.url.split(separator: ":").last!))
            let body = #"{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}"#
            func request(token: String) -> String {
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let accepted = try await RawHTTP.exchange(port: port, requests: [request(token: fixture.token)])
            #expect(accepted.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"))
            // A request refused at its head gets the final answer alone: no invitation to send the body.
            let refused = try await RawHTTP.exchange(port: port, requests: [request(token: "sk-wrong")])
            #expect(refused.hasPrefix("HTTP/1.1 401"))
            #expect(upstream.requests.count == 1)
        }
    }

    @Test("a drain ends when the last in-flight answer is done, not at its limit, and cuts nothing")
    func drainEndsWithLastConnection() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        // An hour's limit inside a one-minute test: only the last connection closing can end this drain.
        try await withServer(upstream: upstream.baseURL, drainLimit: .seconds(3600)) { fixture in
            let answer = Task {
                try await TestHTTP.send(
                    .POST, fixture.url + "/v1/chat/completions", token: fixture.token,
                    json: #"{"model":"gated","stream":true,"messages":[]}"#)
            }
            #expect(await eventually { upstream.requests.count == 1 })
            await fixture.group.triggerGracefulShutdown()
            for index in 0..<3 { upstream.release(event: index) }
            let streamed = try await answer.value
            #expect(streamed.status == 200)
            #expect(streamed.body.contains("part2") && streamed.body.hasSuffix("data: [DONE]\n\n"))
            try await fixture.running.value
            #expect(fixture.usage.queued.map(\.error) == [nil], "one row, and the answer was not cut by the drain")
        }
    }

    @Test("a keep-alive client is served request after request on one connection; HTTP/1.0 gets it closed")
    func connectionReuse() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL) { fixture in
            let port = try #require(Int(fixture.url.split(separator: ":").last!))
            let exchange = try await RawHTTP.exchange(
                port: port,
                requests: [
                    "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(fixture.token)\r\n\r\n",
                    "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(fixture.token)\r\n\r\n",
                    "GET /v1/models HTTP/1.0\r\nAuthorization: Bearer \(fixture.token)\r\n\r\n",
                ])
            #expect(exchange.components(separatedBy: " 200 OK").count - 1 == 3)
            #expect(exchange.contains("HTTP/1.0 200 OK"), "an HTTP/1.0 client is answered in HTTP/1.0")
            // The HTTP/1.0 answer cannot be chunked; it ends the connection (the read above ended at close).
            let third = exchange.components(separatedBy: "HTTP/1.0 200 OK").last?.lowercased() ?? ""
            #expect(!third.contains("transfer-encoding: chunked"))
            #expect(third.contains("connection: close"))
            #expect(upstream.requests.count == 3)
            // A client that half-closes after its request still gets the answer; then the server closes.
            let halfClosed = try await RawHTTP.exchange(
                port: port,
                requests: ["GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(fixture.token)\r\n\r\n"],
                halfClose: true)
            #expect(halfClosed.hasPrefix("HTTP/1.1 200 OK"))
            #expect(halfClosed.contains("gpt-test"))
        }
    }

    @Test("an answer to HEAD has its framing headers and no body; CONNECT gets its error body and a close")
    func headAndConnect() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL) { fixture in
            let port = try #require(Int(fixture.url.split(separator: ":").last!))
            let exchange = try await RawHTTP.exchange(
                port: port,
                requests: ["HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "GET /healthz HTTP/1.0\r\n\r\n"])
            let answers = exchange.components(separatedBy: "\r\n\r\n")
            // The HEAD answer names a length, and the next answer's status line follows its head at once.
            #expect(answers.count >= 2 && answers[0].hasPrefix("HTTP/1.1 "))
            #expect(answers[0].lowercased().contains("content-length: "))
            #expect(answers.count == 3 && answers[1].hasPrefix("HTTP/1.1 200 OK"), "\(exchange)")
            #expect(answers.last == #"{"status":"ok","worker":7}"#)

            let connect = try await RawHTTP.exchange(
                port: port, requests: ["CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"])
            let parts = connect.components(separatedBy: "\r\n\r\n")
            let length = parts.first?.lowercased().components(separatedBy: "content-length: ").dropFirst().first?
                .prefix { $0.isNumber }
            // The body the head promises arrives, and the connection closes after it (the exchange read to the close).
            #expect(parts.count == 2 && parts[1].contains(#""error""#), "\(connect)")
            #expect(length.flatMap { Int($0) } == parts.last?.utf8.count)
            #expect(parts.first?.lowercased().contains("connection: close") == true)
        }
    }

    @Test("bytes that make no request get 400 after the answers before them, and the connection closes")
    func unparsable() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withServer(upstream: upstream.baseURL) { fixture in
            let port = try #require(Int(fixture.url.split(separator: ":").last!))
            let exchange = try await RawHTTP.exchange(
                port: port,
                requests: [
                    "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(fixture.token)\r\n\r\n"
                        + "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(fixture.token)\r\n\r\n",
                    "NOT HTTP AT ALL\r\n\r\n",
                ])
            #expect(exchange.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 2)
            let refusal = exchange.components(separatedBy: "HTTP/1.1 200 OK").last ?? ""
            #expect(refusal.contains("HTTP/1.1 400 Bad Request\r\n"))
            #expect(refusal.lowercased().contains("connection: close"))
        }
    }
}

/// Writes raw HTTP requests on one connection, optionally half-closes it, and reads until the server
/// closes it.
enum RawHTTP {
    static func exchange(port: Int, requests: [String], halfClose: Bool = false) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            for request in requests { try await outbound.write(ByteBuffer(string: request)) }
            if halfClose { outbound.finish() }
            var received = ""
            for try await chunk in inbound { received += String(buffer: chunk) }
            return received
        }
    }
}
