import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import ProxyWorker

/// The client side's response encoder on an `EmbeddedChannel`: the bytes NIO's own encoder writes for the same
/// answers, but for HEAD answers, which it frames from the request's method as NIO's server pipeline does.
@Suite("Client response encoder")
struct ClientResponseEncoderTests {
    /// Writes `parts` through an encoder; returns each write's bytes.
    private static func writes(
        _ parts: [HTTPServerResponsePart], through encoder: any ChannelHandler
    ) throws -> [String] {
        let channel = EmbeddedChannel(handler: encoder)
        defer { _ = try? channel.finish() }
        for part in parts { try channel.writeOutbound(part) }
        var written: [String] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else {
                Issue.record("a file region was written")
                continue
            }
            written.append(String(buffer: buffer))
        }
        return written
    }

    private static func ours(_ parts: [HTTPServerResponsePart], answeringHead: Bool = false) throws -> [String] {
        let encoder = ClientResponseEncoder()
        encoder.answeringHead = answeringHead
        return try writes(parts, through: encoder)
    }

    private static func nio(_ parts: [HTTPServerResponsePart]) throws -> [String] {
        try writes(parts, through: HTTPResponseEncoder())
    }

    private static func head(
        _ headers: [(String, String)], status: HTTPResponseStatus = .ok, version: HTTPVersion = .http1_1
    ) -> HTTPServerResponsePart {
        .head(HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(headers)))
    }

    private static func body(_ text: String) -> HTTPServerResponsePart {
        .body(.byteBuffer(ByteBuffer(string: text)))
    }

    @Test("a sized answer: its head in one write, the bytes NIO writes, its body as it is, nothing for the end")
    func sized() throws {
        let parts = [
            Self.head([
                ("content-type", "application/json"), ("x-ünïcode", "välue"), ("Content-Length", "11"),
                ("connection", "close"),
            ]),
            Self.body(#"{"a":true}"# + "\n"), .end(nil),
        ]
        let written = try Self.ours(parts)
        // The end writes nothing but the empty buffer that carries `writeOutbound`'s promise.
        #expect(written.count == 3 && written.last == "")
        #expect(
            written.first
                == "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-ünïcode: välue\r\nContent-Length: 11\r\n"
                + "connection: close\r\n\r\n")
        #expect(written.joined() == (try Self.nio(parts)).joined())
    }

    @Test("an answer without a length is sent in chunks to HTTP/1.1, as NIO frames it, and as it comes to HTTP/1.0")
    func chunked() throws {
        let parts: [HTTPServerResponsePart] = [
            Self.head([("content-type", "text/event-stream"), ("transfer-encoding", "gzip")]),
            Self.body("data: 1\n\n"), Self.body(""), Self.body(String(repeating: "x", count: 300)), .end(nil),
        ]
        let written = try Self.ours(parts).joined()
        #expect(written == (try Self.nio(parts)).joined())
        #expect(
            written
                == "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                + "9\r\ndata: 1\n\n\r\n12c\r\n" + String(repeating: "x", count: 300) + "\r\n0\r\n\r\n")

        // Each chunk leaves whole, its closing line break in the same write (a reader may wait for it): a small one
        // in one buffer, a large one as size line, body, line break.
        let large = String(repeating: "y", count: ChunkFraming.largestCopied + 1)
        let each = try Self.ours([
            Self.head([("content-type", "text/event-stream")]), Self.body("data: 1\n\n"), Self.body(large), .end(nil),
        ])
        #expect(each.count == 6)
        #expect(each.dropFirst().first == "9\r\ndata: 1\n\n\r\n")
        #expect(Array(each.dropFirst(2)) == [String(large.utf8.count, radix: 16) + "\r\n", large, "\r\n", "0\r\n\r\n"])

        let old: [HTTPServerResponsePart] = [
            Self.head([("content-type", "text/event-stream")], version: .http1_0), Self.body("data: 1\n\n"), .end(nil),
        ]
        #expect(try Self.ours(old).joined() == "HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: 1\n\n")
        #expect(try Self.ours(old).joined() == (try Self.nio(old)).joined())
    }

    @Test("an answer to HEAD keeps its framing headers but has no body and no terminator; the next answer has")
    func answerToHead() throws {
        let encoder = ClientResponseEncoder()
        encoder.answeringHead = true
        let channel = EmbeddedChannel(handler: encoder)
        try channel.writeOutbound(Self.head([("content-type", "application/json")]))
        let body = channel.write(Self.body("x"))
        #expect(throws: NIOHTTPResponseEncoderError.self) { try body.wait() }
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        var written = ""
        while case .byteBuffer(let buffer)? = try channel.readOutbound(as: IOData.self) {
            written += String(buffer: buffer)
        }
        #expect(written == "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")

        // The flag lasts one answer: the next is chunked as usual.
        for part in [Self.head([]), Self.body("ok"), .end(nil)] as [HTTPServerResponsePart] {
            try channel.writeOutbound(part)
        }
        written = ""
        while case .byteBuffer(let buffer)? = try channel.readOutbound(as: IOData.self) {
            written += String(buffer: buffer)
        }
        #expect(written == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        _ = try channel.finish()
    }

    @Test("204 and 304 name no length and end with nothing; a 100 Continue leaves the answer after it framed as usual")
    func bodilessStatuses() throws {
        for status in [HTTPResponseStatus.noContent, .notModified] {
            let parts: [HTTPServerResponsePart] = [
                Self.head([("content-length", "0"), ("transfer-encoding", "chunked"), ("etag", "1")], status: status),
                .end(nil),
            ]
            let written = try Self.ours(parts).joined()
            #expect(written == "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\netag: 1\r\n\r\n")
            #expect(written == (try Self.nio(parts)).joined())
        }
        let continued: [HTTPServerResponsePart] = [
            .head(HTTPResponseHead(version: .http1_1, status: .continue)), Self.head([]), Self.body("ok"), .end(nil),
        ]
        #expect(try Self.ours(continued).joined() == (try Self.nio(continued)).joined())
        #expect(
            try Self.ours(continued).joined()
                == "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        )
    }

    @Test("an end's promise completes after what was written before it, chunked or not")
    func endPromise() throws {
        for headers in [[("content-length", "2")], []] {
            let channel = EmbeddedChannel(handler: ClientResponseEncoder())
            try channel.writeOutbound(Self.head(headers))
            try channel.writeOutbound(Self.body("ok"))
            let ended = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
            try ended.wait()
            _ = try channel.finish()
        }
    }
}
