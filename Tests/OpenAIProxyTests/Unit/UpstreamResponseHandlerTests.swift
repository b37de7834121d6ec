import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import ProxyWorker

/// The upstream connection's idle timeout, kept by its last handler: silence closes the connection and fails the
/// answer using it, but not while a request waits for its answer's head.
@Suite("Upstream response handler")
struct UpstreamResponseHandlerTests {
    /// What the connection reported to the request using it.
    final class Recorder: UpstreamDelegate {
        var parts = 0
        var failures: [UpstreamError] = []

        func upstream(_ connection: UpstreamConnection, received part: HTTPClientResponsePart) { parts += 1 }
        func upstreamReadComplete(_ connection: UpstreamConnection) {}
        func upstream(_ connection: UpstreamConnection, failed error: UpstreamError) { failures.append(error) }
    }

    struct Fixture {
        let channel: EmbeddedChannel
        let loop: EmbeddedEventLoop
        let connection: UpstreamConnection
        let recorder: Recorder
    }

    func fixture() async throws -> Fixture {
        let loop = EmbeddedEventLoop()
        let handler = UpstreamResponseHandler(readTimeout: .seconds(10))
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        let connection = UpstreamConnection(channel: channel, requestEncoder: UpstreamRequestEncoder())
        let recorder = Recorder()
        handler.connection = connection
        connection.delegate = recorder
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        return Fixture(channel: channel, loop: loop, connection: connection, recorder: recorder)
    }

    static let head = HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok))

    @Test("an answer silent for the idle timeout since its last read fails with readTimeout and the connection closes")
    func silentAnswer() async throws {
        let fixture = try await fixture()
        fixture.loop.advanceTime(by: .seconds(6))
        try fixture.channel.writeInbound(Self.head)
        #expect(fixture.recorder.parts == 1)
        // The timer set at connect (10 s) finds a read 4 s ago and looks again at 16 s.
        fixture.loop.advanceTime(by: .seconds(9))
        #expect(fixture.channel.isActive && fixture.recorder.failures.isEmpty)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(fixture.recorder.failures == [.readTimeout])
        #expect(!fixture.channel.isActive)
    }

    @Test("a request waiting for its answer's head is left to its first-byte deadline")
    func awaitingHead() async throws {
        let fixture = try await fixture()
        fixture.connection.awaitingHead = true
        fixture.loop.advanceTime(by: .seconds(25))
        #expect(fixture.channel.isActive && fixture.recorder.failures.isEmpty)
        fixture.connection.awaitingHead = false
        fixture.loop.advanceTime(by: .seconds(5))
        #expect(fixture.recorder.failures == [.readTimeout])
        #expect(!fixture.channel.isActive)
    }

    @Test("an idle pooled connection is closed after the idle timeout")
    func idlePooled() async throws {
        let fixture = try await fixture()
        fixture.connection.delegate = nil
        fixture.loop.advanceTime(by: .seconds(9))
        #expect(fixture.channel.isActive)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(!fixture.channel.isActive)
        #expect(fixture.recorder.failures.isEmpty)
    }
}
