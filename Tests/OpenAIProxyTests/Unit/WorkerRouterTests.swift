import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import ProxyWorker
@testable import Shared

/// The worker's router and proxy handler, run through Hummingbird's test client against a real fake upstream.
@Suite("Proxy worker router")
struct WorkerRouterTests {
    struct Fixture {
        let test: TestDatabase
        let usage: UsageSender
        let store: SnapshotStore
        let app: Application<RouterResponder<BasicRequestContext>>
        let token: String
    }

    private func withFixture(
        upstream: String, maxBodyBytes: Int = 4096,
        _ body: @escaping @Sendable (Fixture, any TestClientProtocol) async throws -> Void
    ) async throws {
        let test = try TestDatabase()
        _ = try await test.keys.add(name: "a", value: "sk-router-aaaaaaaa-0001")
        _ = try await test.keys.add(name: "b", value: "sk-router-bbbbbbbb-0002")
        let (_, token) = try await test.tokens.create(name: "client")
        let logger = Logger(label: "test")
        let store = SnapshotStore()
        store.replace(with: try await RoutingSnapshot.load(from: test.database, box: test.box, logger: logger))
        let client = HTTPClient(
            eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton),
            configuration: ProxyWorker.upstreamClientConfiguration())
        let usage = UsageSender(socketPath: test.directory.file("absent.sock"), logger: logger)
        let handler = ProxyHandler(
            upstream: try #require(UpstreamBaseURL(parsing: upstream)), client: client, snapshots: store,
            selector: KeySelector(strategy: .roundRobin, database: test.database), usage: usage, worker: 7,
            maxBodyBytes: maxBodyBytes, logger: logger)
        let app = Application(router: ProxyWorker.buildRouter(handler: handler, index: 7))
        let fixture = Fixture(test: test, usage: usage, store: store, app: app, token: token)
        do {
            try await app.test(.router) { client in try await body(fixture, client) }
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    private func chat(_ token: String?, model: String = "gpt-test", stream: Bool = false) -> (HTTPFields, ByteBuffer) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return (headers, ByteBuffer(string: #"{"model":"\#(model)","stream":\#(stream),"messages":[]}"#))
    }

    @Test("requests are forwarded with the upstream key in turn, and each leaves a usage row")
    func forwards() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withFixture(upstream: upstream.baseURL) { fixture, client in
            for _ in 0..<4 {
                let (headers, body) = chat(fixture.token)
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body) {
                    response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body).contains("hello from upstream"))
                }
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
            #expect(Set(rows.map(\.requestID)).count == 4)
        }
    }

    @Test("query strings pass through and streamed answers carry their usage")
    func queryAndStream() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withFixture(upstream: upstream.baseURL) { fixture, client in
            try await client.execute(
                uri: "/v1/echo?limit=2&after=x%20y", method: .get, headers: [.authorization: "Bearer \(fixture.token)"]
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("X-Upstream-Seen-Query")!] == "limit=2&after=x%20y")
            }
            var headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(fixture.token)"]
            headers[.accept] = "text/event-stream"
            let body = ByteBuffer(string: #"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body) {
                response in
                #expect(response.headers[.contentType] == "text/event-stream")
                let text = String(buffer: response.body)
                #expect(text.contains("part0") && text.contains("part2") && text.hasSuffix("data: [DONE]\n\n"))
            }
            let streamed = try #require(fixture.usage.queued.last)
            #expect(streamed.streamed)
            #expect(streamed.completionTokens == 3)
        }
    }

    @Test("missing, unknown and malformed tokens get 401 in OpenAI's format, and nothing goes upstream")
    func unauthorized() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withFixture(upstream: upstream.baseURL) { fixture, client in
            for token: String? in [nil, "sk-proxy-unknown", ""] {
                let (headers, body) = chat(token)
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body) {
                    response in
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.wwwAuthenticate] == "Bearer")
                    let json = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                    let error = try #require(json?["error"] as? [String: Any])
                    #expect(error["code"] as? String == "invalid_api_key")
                    #expect(error["type"] as? String == "invalid_request_error")
                    #expect(error.keys.sorted() == ["code", "message", "param", "type"])
                }
            }
            #expect(upstream.requests.isEmpty)
            #expect(fixture.usage.queued.allSatisfy { $0.status == 401 && $0.tokenID == nil })
        }
    }

    @Test("oversized bodies get 413 whether or not they declare their length")
    func tooLarge() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withFixture(upstream: upstream.baseURL, maxBodyBytes: 1024) { fixture, client in
            let big = ByteBuffer(string: #"{"model":"m","pad":""# + String(repeating: "x", count: 2000) + #""}"#)
            for declare in [true, false] {
                var headers: HTTPFields = [.authorization: "Bearer \(fixture.token)", .contentType: "application/json"]
                if declare { headers[.contentLength] = String(big.readableBytes) }
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: big) {
                    response in
                    #expect(response.status == .contentTooLarge)
                    #expect(String(buffer: response.body).contains("\"code\":\"request_too_large\""))
                }
            }
            #expect(upstream.requests.isEmpty)
        }
    }

    @Test("an unreachable upstream gives 502 naming the host; unknown paths give 404 JSON")
    func upstreamDown() async throws {
        try await withFixture(upstream: "http://127.0.0.1:\(freePort())/v1") { fixture, client in
            let (headers, body) = chat(fixture.token)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body) {
                response in
                #expect(response.status == .badGateway)
                let text = String(buffer: response.body)
                #expect(text.contains("\"code\":\"upstream_unreachable\""))
                #expect(text.contains("127.0.0.1"))
            }
            try await client.execute(
                uri: "/v1/../admin", method: .get, headers: [.authorization: "Bearer \(fixture.token)"]
            ) {
                response in
                #expect(response.status == .badRequest || response.status == .notFound)
            }
            try await client.execute(uri: "/admin", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("\"code\":\"not_found\""))
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("with no active key the answer is 503 in OpenAI's format")
    func noKeys() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        try await withFixture(upstream: upstream.baseURL) { fixture, client in
            _ = try await fixture.test.keys.setStatus(id: 1, .disabled)
            _ = try await fixture.test.keys.setStatus(id: 2, .disabled)
            // The fixture's snapshot is static; reload it as the refresher would.
            let snapshot = try await RoutingSnapshot.load(
                from: fixture.test.database, box: fixture.test.box, logger: Logger(label: "test"))
            #expect(snapshot.keys.isEmpty)
            fixture.store.replace(with: snapshot)
            let (headers, body) = chat(fixture.token)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body) {
                response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("\"code\":\"no_available_key\""))
            }
            #expect(upstream.requests.isEmpty)
        }
    }
}
