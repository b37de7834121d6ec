import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import ProxyWorker

@Suite("Upstream request encoder")
struct UpstreamRequestEncoderTests {
    private static func head(_ method: HTTPMethod = .POST, version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(
            version: version, method: method, uri: "/v1/chat/completions?x=1",
            headers: HTTPHeaders([
                ("host", "api.example.com"), ("content-type", "application/json"),
                ("authorization", "Bearer sk-upstream"), ("x-ünïcode", "välue"), ("content-length", "11"),
            ]))
    }

    @Test("a head is written as NIO's own encoder writes it, given a content-length")
    func sameBytesAsNIO() throws {
        for version in [HTTPVersion.http1_1, .http1_0] {
            var ours = ByteBuffer()
            UpstreamRequestHead.write(Self.head(version: version), into: &ours)

            let channel = EmbeddedChannel(handler: HTTPRequestEncoder())
            try channel.writeOutbound(HTTPClientRequestPart.head(Self.head(version: version)))
            let nio = try #require(try channel.readOutbound(as: IOData.self))
            guard case .byteBuffer(let theirs) = nio else {
                Issue.record("NIO wrote a file region")
                return
            }
            #expect(String(buffer: ours) == String(buffer: theirs))
            _ = try channel.finish()
        }
        var buffer = ByteBuffer()
        UpstreamRequestHead.write(Self.head(), into: &buffer)
        #expect(
            String(buffer: buffer)
                == "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: api.example.com\r\ncontent-type: application/json\r\n"
                + "authorization: Bearer sk-upstream\r\nx-ünïcode: välue\r\ncontent-length: 11\r\n\r\n")
    }

    @Test("head and body go out as they are, the end adds nothing, and the decoder still reads a HEAD's answer")
    func pipeline() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(UpstreamRequestEncoder())
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder()))

        try channel.writeOutbound(HTTPClientRequestPart.head(Self.head()))
        try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "{\"a\":true}\n"))))
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        var written = ""
        while let part = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { written += String(buffer: buffer) }
        }
        #expect(written.hasPrefix("POST /v1/chat/completions?x=1 HTTP/1.1\r\n"))
        #expect(written.hasSuffix("content-length: 11\r\n\r\n{\"a\":true}\n"))

        // The answer to a HEAD names a length but has no body: the decoder knows the method from the head it saw.
        try channel.writeOutbound(HTTPClientRequestPart.head(Self.head(.HEAD)))
        while try channel.readOutbound(as: IOData.self) != nil {}
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n"))
        var parts: [String] = []
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
            switch part {
            case .head(let head): parts.append("head \(head.status.code)")
            case .body(let body): parts.append("body \(String(buffer: body))")
            case .end: parts.append("end")
            }
        }
        // The POST's answer has its body; the HEAD's ends at its head, though it names a length.
        #expect(parts == ["head 200", "body ok", "end", "head 200", "end"])
        _ = try channel.finish()
    }

    @Test("a body sent with its head goes in the head's buffer when small, as a write of its own after it when large")
    func bodyWithHead() throws {
        let encoder = UpstreamRequestEncoder()
        let channel = EmbeddedChannel(handler: encoder)
        encoder.bodyWithNextHead = ByteBuffer(string: "{\"a\":true}\n")
        try channel.writeOutbound(HTTPClientRequestPart.head(Self.head()))
        guard case .byteBuffer(let one)? = try channel.readOutbound(as: IOData.self) else {
            Issue.record("nothing written")
            return
        }
        #expect(String(buffer: one).hasSuffix("content-length: 11\r\n\r\n{\"a\":true}\n"))
        #expect(try channel.readOutbound(as: IOData.self) == nil)

        let large = String(repeating: "x", count: UpstreamRequestEncoder.largestCopiedBody + 1)
        encoder.bodyWithNextHead = ByteBuffer(string: large)
        try channel.writeOutbound(HTTPClientRequestPart.head(Self.head()))
        guard case .byteBuffer(let head)? = try channel.readOutbound(as: IOData.self),
            case .byteBuffer(let body)? = try channel.readOutbound(as: IOData.self)
        else {
            Issue.record("head and body not written")
            return
        }
        #expect(String(buffer: head).hasSuffix("\r\n\r\n") && String(buffer: body) == large)

        // Used once: the next head goes alone.
        try channel.writeOutbound(HTTPClientRequestPart.head(Self.head(.GET)))
        guard case .byteBuffer(let alone)? = try channel.readOutbound(as: IOData.self) else {
            Issue.record("nothing written")
            return
        }
        #expect(String(buffer: alone).hasPrefix("GET ") && String(buffer: alone).hasSuffix("\r\n\r\n"))
        _ = try channel.finish()
    }
}
