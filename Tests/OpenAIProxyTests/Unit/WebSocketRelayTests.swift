import HTTPServing
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOWebSocket
import Testing

@testable import ProxyWorker
@testable import Shared

/// The relay between two embedded channels on one loop (the client's and the upstream's), each with its real
/// `WebSocketRelay.Side`: frames, back-pressure, endings and usage rows, without sockets.
@Suite("WebSocket relay")
struct WebSocketRelayTests {
    struct Fixture {
        let loop: EmbeddedEventLoop
        let client: EmbeddedChannel
        let upstream: EmbeddedChannel
        let worker: WorkerContext
        let test: TestDatabase

        /// Frames written to `channel` so far.
        func written(to channel: EmbeddedChannel) throws -> [WebSocketFrame] {
            var frames: [WebSocketFrame] = []
            while let frame = try channel.readOutbound(as: WebSocketFrame.self) { frames.append(frame) }
            return frames
        }
    }

    func fixture(allowedModels: [String]? = nil) async throws -> Fixture {
        let test = try TestDatabase()
        let logger = Logger(label: "test")
        let store = SnapshotStore(
            defaults: RequestSettings(
                maxBodyBytes: 1 << 20, firstByteTimeout: .seconds(5), connectTimeout: nil,
                selector: KeySelector(strategy: .roundRobin, database: test.database), maxAttempts: 3))
        let base = try #require(UpstreamBaseURL(parsing: "http://127.0.0.1:9"))
        let worker = WorkerContext(
            worker: 1, upstream: base, snapshots: store,
            health: KeyHealthBoard(
                store: KeyHealthStore(database: test.database, policy: KeyHealthPolicy(), logger: logger),
                logger: logger),
            usage: UsageSender(socketPath: test.directory.file("absent.sock"), logger: logger),
            rateWindows: TokenRateWindows(database: test.database),
            pools: try await UpstreamPools(
                group: MultiThreadedEventLoopGroup.singleton, target: try UpstreamTarget(base),
                connectTimeout: .seconds(1), readTimeout: .seconds(1)),
            logger: logger)
        let relay = WebSocketRelay(
            worker: worker,
            template: WebSocketRelay.RowTemplate(
                requestID: "sock", path: "/v1/realtime", tokenID: 7,
                key: RoutableKey(id: 2, hint: "k2", value: "sk-2"), fromConsole: false),
            session: WebSocketSession(allowedModels: allowedModels, model: "gpt-rt"))
        let loop = EmbeddedEventLoop()
        let upstream = EmbeddedChannel(handler: WebSocketRelay.Side(relay: relay, role: .upstream), loop: loop)
        let client = EmbeddedChannel(handler: WebSocketRelay.Side(relay: relay, role: .client), loop: loop)
        return Fixture(loop: loop, client: client, upstream: upstream, worker: worker, test: test)
    }

    static func frame(
        _ opcode: WebSocketOpcode, _ text: String, masked: Bool = false, fin: Bool = true
    )
        -> WebSocketFrame
    {
        var data = ByteBuffer(string: text)
        let key: WebSocketMaskingKey? = masked ? .random() : nil
        if let key { data.webSocketMask(key) }
        return WebSocketFrame(fin: fin, opcode: opcode, maskKey: key, data: data)
    }

    @Test("frames cross both ways: the client's unmasked and masked anew for the upstream, the upstream's as they are")
    func relaysBothWays() async throws {
        let fixture = try await fixture()
        try fixture.client.writeInbound(Self.frame(.text, "hello", masked: true))
        let up = try fixture.written(to: fixture.upstream)
        #expect(up.count == 1)
        // Masked by the encoder with the frame's new key: the frame carries the plain data.
        #expect(up.first?.maskKey != nil)
        #expect(up.first.map { String(buffer: $0.data) } == "hello")

        try fixture.upstream.writeInbound(Self.frame(.ping, "p"))
        try fixture.upstream.writeInbound(Self.frame(.text, "world"))
        let down = try fixture.written(to: fixture.client)
        #expect(down.map(\.opcode) == [.ping, .text])
        #expect(down.allSatisfy { $0.maskKey == nil })
        #expect(down.last.map { String(buffer: $0.data) } == "world")
    }

    @Test("a side that cannot write stops the other side's reading until it can again")
    func backPressure() async throws {
        let fixture = try await fixture()
        // An embedded channel reports autoRead as on whatever was set; what was set is in its options.
        func upstreamAutoRead() -> Bool? {
            fixture.upstream.options.first { $0.option is ChannelOptions.Types.AutoReadOption }?.value as? Bool
        }
        fixture.client.isWritable = false
        fixture.client.pipeline.fireChannelWritabilityChanged()
        #expect(upstreamAutoRead() == false)
        fixture.client.isWritable = true
        fixture.client.pipeline.fireChannelWritabilityChanged()
        #expect(upstreamAutoRead() == true)
    }

    @Test("the drain deadline sends both sides a 1001 close frame, then closes them")
    func drainDeadline() async throws {
        let fixture = try await fixture()
        fixture.client.pipeline.fireUserInboundEventTriggered(DrainDeadlineEvent())
        fixture.loop.run()
        for (channel, masked) in [(fixture.client, false), (fixture.upstream, true)] {
            let frames = try fixture.written(to: channel)
            #expect(frames.count == 1)
            var data = try #require(frames.first?.data)
            #expect(frames.first?.opcode == .connectionClose)
            #expect((frames.first?.maskKey != nil) == masked)
            #expect(data.readWebSocketErrorCode() == .goingAway)
            #expect(!channel.isActive)
        }
    }

    @Test("the client's connection closing closes the upstream's")
    func closesTogether() async throws {
        let fixture = try await fixture()
        try await fixture.client.close()
        fixture.loop.run()
        #expect(!fixture.upstream.isActive)
    }

    @Test("each response the upstream ends leaves a usage row with the socket's id and a suffix")
    func usageRows() async throws {
        let fixture = try await fixture()
        let done =
            #"{"type":"response.done","response":{"usage":{"input_tokens":5,"output_tokens":7,"total_tokens":12}}}"#
        try fixture.upstream.writeInbound(Self.frame(.text, done))
        try fixture.upstream.writeInbound(Self.frame(.text, #"{"type":"response.created"}"#))
        try fixture.upstream.writeInbound(Self.frame(.text, done))
        let rows = fixture.worker.usage.queued
        #expect(rows.map(\.requestID) == ["sock-1", "sock-2"])
        #expect(rows.allSatisfy { $0.path == "/v1/realtime" && $0.keyID == 2 && $0.tokenID == 7 })
        #expect(rows.allSatisfy { $0.promptTokens == 5 && $0.completionTokens == 7 && $0.totalTokens == 12 })
        #expect(rows.allSatisfy { $0.model == "gpt-rt" && $0.status == 200 && $0.error == nil })
        // Every frame still reached the client.
        #expect(try fixture.written(to: fixture.client).count == 3)
    }

    @Test("a message naming a model the token may not use gets an error event and never reaches the upstream")
    func refusedMessage() async throws {
        let fixture = try await fixture(allowedModels: ["gpt-rt"])
        try fixture.client.writeInbound(
            Self.frame(.text, #"{"type":"session.update","session":{"model":"gpt-no"}}"#, masked: true))
        #expect(try fixture.written(to: fixture.upstream).isEmpty)
        let error = try fixture.written(to: fixture.client)
        #expect(error.count == 1)
        let text = error.first.map { String(buffer: $0.data) } ?? ""
        #expect(text.hasPrefix(#"{"type":"error","error":{"#) && text.contains("model_not_allowed"))
    }
}
