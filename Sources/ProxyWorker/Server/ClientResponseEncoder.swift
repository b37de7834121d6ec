import NIOCore
import NIOHTTP1
import Shared

/// Puts the answers to clients on the wire, in place of NIO's `HTTPResponseEncoder`: the head in one copy into one
/// buffer, body parts as they are, chunked framing only for an answer that has no length.
///
/// Framed as NIO frames them: an answer that may have a body and names no `content-length` is sent in chunks to an
/// HTTP/1.1 client (`transfer-encoding: chunked` added), as it is to an HTTP/1.0 one (the close ends it); an answer
/// to a HEAD request keeps its framing headers but has no body and no chunk terminator; a status that has no body
/// (1xx, 204, 304) loses any `content-length`. NIO's encoder wrote each header in four calls that each checked the
/// buffer's uniqueness, and cost a trip through `HTTPHeaders` to add or drop framing headers.
final class ClientResponseEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = IOData

    /// The answer about to be written is to a HEAD request: set by the connection's handler as each request begins
    /// (requests are answered one at a time, in order), cleared as each answer ends.
    var answeringHead = false
    /// The answer being written is framed in chunks.
    private var chunked = false
    /// The answer being written may carry no body.
    private var bodiless = false
    /// A final answer's head was written and its end not yet.
    private(set) var answerOpen = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            var buffer = context.channel.allocator.buffer(capacity: 0)
            let framedInChunks = ClientResponseHead.write(head, into: &buffer)
            // A non-final 1xx (100 Continue) is followed by the answer's own head.
            if head.status.code >= 200 || head.status == .switchingProtocols {
                answerOpen = true
                bodiless = answeringHead
                chunked = framedInChunks && !answeringHead
            }
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
        case .body(let body):
            if bodiless {
                promise?.fail(NIOHTTPResponseEncoderError.responseBodyNotAllowed)
            } else if chunked, body.readableBytes > 0 {
                // Each chunk goes out whole, its closing line break included: a client's reader may wait for that
                // break before it hands the chunk on, so holding it back until the next chunk would hold back
                // every streamed event. A small chunk (an SSE event) is one buffer, one pending write.
                if case .byteBuffer(let bytes) = body, bytes.readableBytes <= ChunkFraming.largestCopied {
                    var chunk = context.channel.allocator.buffer(capacity: bytes.readableBytes + 12)
                    ChunkFraming.writeSizeLine(bytes.readableBytes, into: &chunk)
                    chunk.writeImmutableBuffer(bytes)
                    chunk.writeStaticString("\r\n")
                    context.write(wrapOutboundOut(.byteBuffer(chunk)), promise: promise)
                } else {
                    var line = context.channel.allocator.buffer(capacity: 16)
                    ChunkFraming.writeSizeLine(body.readableBytes, into: &line)
                    context.write(wrapOutboundOut(.byteBuffer(line)), promise: nil)
                    context.write(wrapOutboundOut(body), promise: nil)
                    let lineBreak = context.channel.allocator.buffer(staticString: "\r\n")
                    context.write(wrapOutboundOut(.byteBuffer(lineBreak)), promise: promise)
                }
            } else {
                context.write(wrapOutboundOut(body), promise: promise)
            }
        case .end(let trailers):
            answerOpen = false
            answeringHead = false
            bodiless = false
            if chunked {
                chunked = false
                var last = context.channel.allocator.buffer(capacity: 16)
                ChunkFraming.writeEnd(trailers: trailers, into: &last)
                context.write(wrapOutboundOut(.byteBuffer(last)), promise: promise)
            } else if let promise {
                // Nothing to write; the promise still completes after what was written before it.
                context.write(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: promise)
            }
        }
    }
}

/// The chunked framing's own bytes: size lines and the terminator.
enum ChunkFraming {
    /// The largest chunk copied into one buffer with its size line and closing line break.
    static let largestCopied = 16 << 10

    /// Appends the size line of a chunk of `size` bytes (`1a2\r\n`).
    static func writeSizeLine(_ size: Int, into buffer: inout ByteBuffer) {
        buffer.writeString(String(size, radix: 16))
        buffer.writeStaticString("\r\n")
    }

    /// Appends the last chunk (`0\r\n`), the trailers if any, and the blank line that ends the answer.
    static func writeEnd(trailers: HTTPHeaders?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("0\r\n")
        for (name, value) in trailers ?? [:] {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}

/// An HTTP/1 response head as bytes.
enum ClientResponseHead {
    /// Appends `head` to `buffer`: status line, headers, blank line, with the framing headers corrected (see
    /// `ClientResponseEncoder`). Returns whether the body that follows is framed in chunks.
    @discardableResult
    static func write(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) -> Bool {
        let mayHaveBody = head.status.mayHaveResponseBody
        let reason = head.status.reasonPhrase
        var hasLength = false
        var dropsHeaders = false
        var size = 9 + 5 + reason.utf8.count + 2 + 2
        for (name, value) in head.headers {
            size += name.utf8.count + value.utf8.count + 4
            if isContentLength(name) {
                hasLength = true
                dropsHeaders = dropsHeaders || !mayHaveBody
            } else if isTransferEncoding(name) {
                dropsHeaders = true
            }
        }
        let chunked = mayHaveBody && !hasLength && head.version.major == 1 && head.version.minor >= 1
        let chunkedLine = "transfer-encoding: chunked\r\n"
        if chunked { size += chunkedLine.utf8.count }
        let version = head.version.major == 1 && head.version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 "
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            let base = out.baseAddress!
            var at = 0
            UpstreamRequestHead.put(version, base, &at)
            putStatusCode(head.status.code, base, &at)
            UpstreamRequestHead.put(" ", base, &at)
            UpstreamRequestHead.put(reason, base, &at)
            UpstreamRequestHead.put("\r\n", base, &at)
            for (name, value) in head.headers {
                // Framing is this encoder's: `transfer-encoding` is written only as it decides, and a status without
                // a body names no length.
                if dropsHeaders, isTransferEncoding(name) || (!mayHaveBody && isContentLength(name)) { continue }
                UpstreamRequestHead.put(name, base, &at)
                UpstreamRequestHead.put(": ", base, &at)
                UpstreamRequestHead.put(value, base, &at)
                UpstreamRequestHead.put("\r\n", base, &at)
            }
            if chunked { UpstreamRequestHead.put(chunkedLine, base, &at) }
            UpstreamRequestHead.put("\r\n", base, &at)
            return at
        }
        return chunked
    }

    /// Writes a status code's three digits (any other code as its decimal text, which fits the four bytes allowed).
    @inline(__always)
    private static func putStatusCode(_ code: UInt, _ base: UnsafeMutableRawPointer, _ offset: inout Int) {
        guard (100...999).contains(code) else {
            UpstreamRequestHead.put(String(min(code, 9999)), base, &offset)
            return
        }
        base.storeBytes(of: UInt8(48 + code / 100), toByteOffset: offset, as: UInt8.self)
        base.storeBytes(of: UInt8(48 + code / 10 % 10), toByteOffset: offset + 1, as: UInt8.self)
        base.storeBytes(of: UInt8(48 + code % 10), toByteOffset: offset + 2, as: UInt8.self)
        offset += 3
    }

    @inline(__always)
    private static func isContentLength(_ name: String) -> Bool { HeaderName.matches(name, "content-length") }

    @inline(__always)
    private static func isTransferEncoding(_ name: String) -> Bool { HeaderName.matches(name, "transfer-encoding") }
}
