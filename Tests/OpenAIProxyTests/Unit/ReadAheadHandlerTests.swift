import HTTPServing
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@Suite("Read-ahead while a request is answered")
struct ReadAheadHandlerTests {
    /// Counts the reads that reach the socket side of the pipeline.
    private final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0

        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// Tells the read-ahead what the worker's connection handler tells it: each request received whole.
    private final class Server: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        let readAhead: ReadAheadHandler

        init(_ readAhead: ReadAheadHandler) {
            self.readAhead = readAhead
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .end = unwrapInboundIn(data) { readAhead.requestReceived() }
            context.fireChannelRead(data)
        }
    }

    /// A channel with the handlers in the order the worker uses, without the codec (parts go in as parts).
    private func channel() throws -> (EmbeddedChannel, ReadCounter) {
        let counter = ReadCounter()
        let channel = EmbeddedChannel()
        let pipeline = channel.pipeline.syncOperations
        let readAhead = ReadAheadHandler()
        try pipeline.addHandler(counter)
        try pipeline.addHandler(readAhead)
        try pipeline.addHandler(HTTPServerPipelineHandler())
        try pipeline.addHandler(Server(readAhead))
        return (channel, counter)
    }

    /// A request part read from the socket (`writeInbound` would also end the read).
    private func receive(_ channel: EmbeddedChannel, _ part: HTTPServerRequestPart) {
        channel.pipeline.syncOperations.fireChannelRead(NIOAny(part))
    }

    private func request(_ channel: EmbeddedChannel, end: Bool = true) {
        receive(channel, .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        if end { receive(channel, .end(nil)) }
    }

    private func answer(_ channel: EmbeddedChannel) throws {
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.pipeline.syncOperations.handler(type: ReadAheadHandler.self).answerEnded()
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
    }

    @Test("reading goes on while an answer is awaited, and is left to the pipeline once the answer is out")
    func keepsReadingWhileAnswered() throws {
        let (channel, counter) = try channel()
        request(channel, end: false)
        channel.pipeline.fireChannelReadComplete()
        #expect(counter.reads == 0, "a request still arriving is read as the pipeline asks")
        receive(channel, .end(nil))
        channel.pipeline.fireChannelReadComplete()
        #expect(counter.reads == 1)
        // Reads the pipelining handler would hold back (the socket's own, after a read) still get through.
        channel.pipeline.fireChannelReadComplete()
        #expect(counter.reads == 2)
        try answer(channel)
        channel.pipeline.fireChannelReadComplete()
        #expect(counter.reads == 2, "nothing awaited: the read is the channel's to ask for")
        _ = try channel.finish()
    }

    @Test("a client that pipelines gets the pipelining handler's hold, and read-ahead again once answered")
    func pipelinedRequestsAreHeld() throws {
        let (channel, counter) = try channel()
        request(channel)
        request(channel)
        channel.pipeline.fireChannelReadComplete()
        #expect(counter.reads == 0, "the second request arrived while the first was awaited")
        // The pipelining handler delivers the second request once the first is answered.
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) != nil)
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) != nil)
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) == nil)
        try answer(channel)
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) != nil)
        channel.pipeline.fireChannelReadComplete()
        #expect(counter.reads == 0, "the second is still awaited, and was pipelined")
        try answer(channel)
        request(channel)
        channel.pipeline.fireChannelReadComplete()
        #expect(counter.reads == 1, "all answered: a plain request reads ahead again")
        _ = try channel.finish()
    }
}
