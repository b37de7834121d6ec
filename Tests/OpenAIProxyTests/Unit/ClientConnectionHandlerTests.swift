import HTTPServing
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

@testable import ProxyWorker
@testable import Shared

/// The handler on an `EmbeddedChannel`: whole exchanges that need no upstream, with the rows and counts they
/// leave and the body budget they give back.
@Suite("Client connection handler")
struct ClientConnectionHandlerTests {
    struct Fixture {
        let channel: EmbeddedChannel
        let loop: EmbeddedEventLoop
        let worker: WorkerContext
        let budget: BodyBudget
        let test: TestDatabase

        /// Usage rows recorded so far.
        var rows: [UsageRow] { worker.usage.queued }

        /// Sends a request part as the client.
        func send(_ part: HTTPServerRequestPart) throws {
            try channel.writeInbound(part)
        }

        /// The parts written to the client so far, once the loop's tick is over (an answer's end is flushed
        /// after the tick's usage rows are sent).
        func answer() throws -> [HTTPServerResponsePart] {
            loop.run()
            var parts: [HTTPServerResponsePart] = []
            while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
            return parts
        }
    }

    static let token = "sk-proxy-handler-test"

    func fixture(
        maxBodyBytes: Int = 1 << 20, bodyTimeout: TimeAmount = .seconds(10), keepAliveTimeout: TimeAmount = .seconds(75)
    ) async throws -> Fixture {
        let test = try TestDatabase()
        let logger = Logger(label: "test")
        let store = SnapshotStore(
            defaults: RequestSettings(
                maxBodyBytes: maxBodyBytes, firstByteTimeout: .seconds(5), connectTimeout: nil,
                selector: KeySelector(strategy: .roundRobin, database: test.database), maxAttempts: 3))
        store.replace(
            with: RoutingSnapshot(
                generation: 1, keys: [], tokens: [SecretDigest.sha256Hex(Self.token): TokenEntry(id: 5, limits: nil)]))
        let base = try #require(UpstreamBaseURL(parsing: "http://127.0.0.1:9"))
        let usage = UsageSender(socketPath: test.directory.file("absent.sock"), logger: logger)
        let worker = WorkerContext(
            worker: 3, upstream: base, snapshots: store,
            health: KeyHealthBoard(
                store: KeyHealthStore(database: test.database, policy: KeyHealthPolicy(), logger: logger),
                logger: logger),
            usage: usage, rateWindows: TokenRateWindows(database: test.database),
            pools: try await UpstreamPools(
                group: MultiThreadedEventLoopGroup.singleton, target: try UpstreamTarget(base),
                connectTimeout: .seconds(1), readTimeout: .seconds(1)),
            logger: logger)
        let budget = BodyBudget(limit: 1 << 20)
        let loop = EmbeddedEventLoop()
        let handler = ClientConnectionHandler(
            worker: worker, registry: ConnectionRegistry(),
            limits: ClientLimits(
                headerTimeout: .seconds(10), keepAliveTimeout: keepAliveTimeout, bodyTimeout: bodyTimeout,
                bodyBudget: budget))
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        return Fixture(channel: channel, loop: loop, worker: worker, budget: budget, test: test)
    }

    func head(
        _ method: HTTPMethod = .POST, _ uri: String = "/v1/chat/completions", token: String? = token,
        _ extra: [(String, String)] = []
    ) -> HTTPServerRequestPart {
        var headers = HTTPHeaders(extra)
        if let token { headers.add(name: "authorization", value: "Bearer \(token)") }
        return .head(HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers))
    }

    /// The status and body of a whole answer.
    func whole(_ parts: [HTTPServerResponsePart]) -> (status: UInt, headers: HTTPHeaders, body: String, ended: Bool)? {
        guard case .head(let head)? = parts.first else { return nil }
        var body = ""
        var ended = false
        for part in parts.dropFirst() {
            switch part {
            case .body(.byteBuffer(let bytes)): body += String(buffer: bytes)
            case .end: ended = true
            default: break
            }
        }
        return (head.status.code, head.headers, body, ended)
    }

    @Test("health and a missing token are answered here on one kept-alive connection, with no usage row")
    func localAnswers() async throws {
        let fixture = try await fixture()
        try fixture.send(head(.GET, "/healthz", token: nil))
        try fixture.send(.end(nil))
        let health = try #require(whole(try fixture.answer()))
        #expect(health.status == 200 && health.body == #"{"status":"ok","worker":3}"# && health.ended)

        try fixture.send(head(token: nil))
        try fixture.send(.end(nil))
        let refused = try #require(whole(try fixture.answer()))
        #expect(refused.status == 401 && refused.body.contains("invalid_api_key"))
        #expect(refused.headers.first(name: "www-authenticate") == "Bearer")
        #expect(fixture.channel.isActive)
        #expect(fixture.rows.isEmpty)
        #expect(fixture.worker.refused.take(now: WallClock.nowMs()).map(\.reason) == [.missingToken])
    }

    @Test("a request no key can serve gets 503 and one usage row, and its body leaves the budget")
    func noKeys() async throws {
        let fixture = try await fixture()
        try fixture.send(head())
        try fixture.send(.body(ByteBuffer(string: #"{"model":"gpt-x","messages":[]}"#)))
        #expect(fixture.budget.current > 0)
        try fixture.send(.end(nil))
        let answer = try #require(whole(try fixture.answer()))
        #expect(answer.status == 503 && answer.body.contains("no_available_key"))
        #expect(fixture.budget.current == 0)
        let row = try #require(fixture.rows.first)
        #expect(fixture.rows.count == 1)
        #expect(row.status == 503 && row.error == "no_available_key" && row.tokenID == 5 && row.model == "gpt-x")
    }

    @Test("an answer's end goes out only after its row, even when the next request is answered here at once")
    func endAfterRow() async throws {
        let fixture = try await fixture()
        try fixture.send(head())
        try fixture.send(.body(ByteBuffer(string: #"{"model":"gpt-x","messages":[]}"#)))
        try fixture.send(.end(nil))
        // A pipelined request in the same tick, answered here without a row: its flush would carry the 503's
        // end out before the 503's row is sent.
        try fixture.send(head(token: nil))
        try fixture.send(.end(nil))
        #expect(try fixture.channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
        let parts = try fixture.answer()
        let statuses = parts.compactMap { part -> UInt? in
            if case .head(let head) = part { return head.status.code }
            return nil
        }
        #expect(statuses == [503, 401])
        #expect(parts.filter { if case .end = $0 { true } else { false } }.count == 2)
        #expect(fixture.rows.map(\.status) == [503])
    }

    @Test("a declared body past the limit is 413 at once, with a row, and the connection closes after it")
    func tooLarge() async throws {
        let fixture = try await fixture(maxBodyBytes: 100)
        try fixture.send(head(.POST, "/v1/chat/completions", token: Self.token, [("content-length", "5000")]))
        let answer = try #require(whole(try fixture.answer()))
        #expect(answer.status == 413 && answer.headers.first(name: "connection") == "close")
        #expect(fixture.rows.map(\.status) == [413])
        fixture.loop.run()
        #expect(!fixture.channel.isActive)
    }

    @Test("100 Continue goes out as soon as the head is accepted")
    func continueSent() async throws {
        let fixture = try await fixture()
        try fixture.send(head(.POST, "/v1/chat/completions", token: Self.token, [("expect", "100-continue")]))
        guard case .head(let head)? = try fixture.answer().first else {
            Issue.record("no 100 Continue")
            return
        }
        #expect(head.status == .continue)
    }

    @Test("a body that falls silent gets 408 with a row, then the connection closes")
    func bodyTimeout() async throws {
        let fixture = try await fixture(bodyTimeout: .seconds(2))
        try fixture.send(head())
        try fixture.send(.body(ByteBuffer(string: "{")))
        fixture.channel.pipeline.fireChannelReadComplete()
        // The timer armed for the head (10 s) finds the body's deadline (2 s after its last byte) passed.
        fixture.loop.advanceTime(by: .seconds(11))
        let answer = try #require(whole(try fixture.answer()))
        #expect(answer.status == 408 && answer.body.contains("client_timeout"))
        #expect(fixture.rows.map(\.status) == [408])
        #expect(fixture.budget.current == 0)
        #expect(!fixture.channel.isActive)
    }

    @Test("a client gone mid-body leaves a 499 row; one cut by the drain deadline says drain_timeout")
    func clientGone() async throws {
        let cancelled = try await fixture()
        try cancelled.send(head())
        try cancelled.send(.body(ByteBuffer(string: "{")))
        try await cancelled.channel.close().get()
        #expect(cancelled.rows.map(\.status) == [499])
        #expect(cancelled.rows.first?.error == "client_cancelled")
        #expect(cancelled.budget.current == 0)

        let drained = try await fixture()
        try drained.send(head())
        drained.channel.pipeline.fireUserInboundEventTriggered(DrainDeadlineEvent())
        try await drained.channel.close().get()
        #expect(drained.rows.first?.error == "drain_timeout")
        #expect(drained.rows.count == 1)
    }

    @Test("a kept-alive connection silent for the keep-alive timeout after its answer is closed, not before")
    func keepAliveTimeout() async throws {
        let fixture = try await fixture(keepAliveTimeout: .seconds(20))
        fixture.loop.advanceTime(by: .seconds(3))
        try fixture.send(head(.GET, "/healthz", token: nil))
        try fixture.send(.end(nil))
        #expect(whole(try fixture.answer())?.status == 200)
        // Due 20 s after the answer, not after the accept (the head's timer, at 10 s, looks again).
        fixture.loop.advanceTime(by: .seconds(19))
        #expect(fixture.channel.isActive)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(!fixture.channel.isActive)
        #expect(try fixture.answer().isEmpty)
    }

    @Test("bytes of a next head on an idle connection are due by the header timeout, before the keep-alive wait ends")
    func headAfterKeepAlive() async throws {
        let fixture = try await fixture(keepAliveTimeout: .seconds(60))
        try fixture.send(head(.GET, "/healthz", token: nil))
        try fixture.send(.end(nil))
        #expect(whole(try fixture.answer())?.status == 200)
        // The head's timer (10 s) has looked again and now waits for the keep-alive deadline (60 s).
        fixture.loop.advanceTime(by: .seconds(12))
        // A read that made no request part: a head has begun, due 10 s from now.
        fixture.channel.pipeline.fireChannelReadComplete()
        fixture.loop.advanceTime(by: .seconds(9))
        #expect(fixture.channel.isActive)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(!fixture.channel.isActive)
    }

    @Test("bytes the decoder cannot parse get 400 with connection: close, and the connection closes")
    func unparsable() async throws {
        let fixture = try await fixture()
        fixture.channel.pipeline.fireErrorCaught(HTTPParserError.invalidMethod)
        let answer = try #require(whole(try fixture.answer()))
        #expect(answer.status == 400 && answer.ended)
        #expect(answer.headers.first(name: "connection") == "close")
        #expect(!fixture.channel.isActive)
        #expect(fixture.rows.isEmpty)
    }

    @Test("a CONNECT request gets its error answer, body and all, and the connection closes after it")
    func connect() async throws {
        let fixture = try await fixture()
        try fixture.send(head(.CONNECT, "example.com:443", token: nil))
        try fixture.send(.end(nil))
        let answer = try #require(whole(try fixture.answer()))
        #expect(answer.status >= 400 && answer.body.contains(#""error""#) && answer.ended)
        #expect(answer.headers.first(name: "connection") == "close")
        #expect(!fixture.channel.isActive)
    }

    /// Stands for a client that stops reading: an answer's end never goes out (its write never completes).
    final class EndNeverWritten: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = HTTPServerResponsePart
        private var held: [EventLoopPromise<Void>] = []

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) {
                if let promise { held.append(promise) }
                return
            }
            context.write(data, promise: promise)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            for promise in held { promise.fail(ChannelError.ioOnClosedChannel) }
        }
    }

    @Test("an answer that closes its connection but that the client does not take is closed at the keep-alive timeout")
    func closingAnswerNotTaken() async throws {
        let fixture = try await fixture(keepAliveTimeout: .seconds(20))
        try fixture.channel.pipeline.syncOperations.addHandler(EndNeverWritten(), position: .first)
        try fixture.send(head(.GET, "/healthz", token: nil, [("connection", "close")]))
        try fixture.send(.end(nil))
        #expect(whole(try fixture.answer())?.status == 200)
        fixture.loop.advanceTime(by: .seconds(19))
        #expect(fixture.channel.isActive)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(!fixture.channel.isActive)
    }
}
