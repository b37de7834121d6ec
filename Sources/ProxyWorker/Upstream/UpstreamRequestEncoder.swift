import NIOCore
import NIOHTTP1

/// Puts the requests the proxy sends upstream on the wire, in place of NIO's `HTTPRequestEncoder`: the head in one
/// copy into one buffer, the body as it is.
///
/// The proxy frames every request itself: a `content-length` whenever there is a body (it holds the whole body
/// before sending), none for a request without one, never `transfer-encoding` (`ForwardedHeaders` drops the
/// client's). So there is no chunked framing to write and `.end` writes nothing. NIO's encoder wrote each header
/// in four calls that each checked the buffer's uniqueness (measured: 6k instructions for a chat request's head).
///
/// A request's body can ride with its head (`bodyWithNextHead`): one write through the pipeline instead of two
/// (the response decoder and this encoder each unwrap every write, a dynamic cast each), and a small body goes to
/// the socket in the head's buffer.
final class UpstreamRequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    /// The largest body copied into its head's buffer; a larger one follows it as a write of its own.
    static let largestCopiedBody = 16 << 10

    /// The body of the request whose head is written next: set by the request's sender right before it writes the
    /// head, and sent after it.
    var bodyWithNextHead: ByteBuffer?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            let body = bodyWithNextHead
            bodyWithNextHead = nil
            let copied = body.map { $0.readableBytes <= Self.largestCopiedBody } ?? false
            var buffer = context.channel.allocator.buffer(capacity: copied ? 1024 + body!.readableBytes : 0)
            UpstreamRequestHead.write(head, into: &buffer)
            if let body {
                if copied {
                    buffer.writeImmutableBuffer(body)
                } else {
                    context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
                    buffer = body
                }
            }
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
        case .body(let body):
            context.write(wrapOutboundOut(body), promise: promise)
        case .end:
            // Nothing to write; a promise still completes after what was written before it.
            if let promise { context.write(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: promise) }
        }
    }
}

/// An HTTP/1 request head as bytes.
enum UpstreamRequestHead {
    /// Appends `head` to `buffer`: request line, headers as given, blank line.
    static func write(_ head: HTTPRequestHead, into buffer: inout ByteBuffer) {
        let method = head.method.rawValue
        let version = head.version.minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n"
        var size = method.utf8.count + 1 + head.uri.utf8.count + version.utf8.count + 2
        for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            let base = out.baseAddress!
            var at = 0
            put(method, base, &at)
            put(" ", base, &at)
            put(head.uri, base, &at)
            put(version, base, &at)
            for (name, value) in head.headers {
                put(name, base, &at)
                put(": ", base, &at)
                put(value, base, &at)
                put("\r\n", base, &at)
            }
            put("\r\n", base, &at)
            return at
        }
    }

    /// Copies `text` to `base + offset` and moves `offset` past it. A static function taking the offset `inout`:
    /// a local function capturing it cost two dynamic exclusivity checks per call.
    @inline(__always)
    static func put(_ text: String, _ base: UnsafeMutableRawPointer, _ offset: inout Int) {
        var text = text
        let destination = base + offset
        offset += text.withUTF8 { bytes in
            if let source = bytes.baseAddress { destination.copyMemory(from: source, byteCount: bytes.count) }
            return bytes.count
        }
    }
}
