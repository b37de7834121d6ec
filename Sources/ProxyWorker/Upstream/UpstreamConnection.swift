import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the request using it, always on its event loop.
protocol UpstreamDelegate: AnyObject {
    /// A part of the answer arrived.
    func upstream(_ connection: UpstreamConnection, received part: HTTPClientResponsePart)
    /// The current read burst ended: a moment to flush what was written downstream.
    func upstreamReadComplete(_ connection: UpstreamConnection)
    /// The connection failed or closed before the answer ended.
    func upstream(_ connection: UpstreamConnection, failed error: UpstreamError)
}

/// Why an exchange with the upstream failed.
enum UpstreamError: Error, Equatable {
    /// The connection could not be made (refused, unreachable, name not found, connect timeout).
    case connectFailed(String)
    /// The connection closed or broke before the answer ended.
    case connectionClosed
    /// No answer head within the first-byte deadline.
    case firstByteTimeout
    /// The answer stopped: nothing arrived for the stream idle timeout.
    case readTimeout
}

/// One keep-alive HTTP/1.1 connection to the upstream, used by one request at a time.
final class UpstreamConnection {
    let channel: any Channel
    /// The connection's request encoder, which sends a request's body with its head.
    let requestEncoder: UpstreamRequestEncoder
    /// The request currently using the connection.
    weak var delegate: (any UpstreamDelegate)?
    /// Whether the connection already served an answer (a reused one may have been closed by the peer).
    var servedBefore = false
    /// When the connection was put back into the pool.
    var idleSince = NIODeadline.now()
    /// A request went out and its answer's head has not arrived: the request's first-byte deadline
    /// applies, not the idle timeout.
    var awaitingHead = false
    /// Reading was turned off because the client could not take more (back-pressure); the pool turns it
    /// back on before the connection serves another request.
    var readingPaused = false

    /// The connection over `channel`, whose pipeline holds `requestEncoder`.
    init(channel: any Channel, requestEncoder: UpstreamRequestEncoder) {
        self.channel = channel
        self.requestEncoder = requestEncoder
    }
}

/// The connection's last handler: passes answer parts to the current request; reports failures; and closes the
/// connection when nothing arrives for the stream idle timeout, failing the answer using it (if any) but for one
/// still waiting for its head, which the request's first-byte deadline times.
///
/// The idle timeout is kept here, not by NIO's `IdleStateHandler`: one handler less for every read and write
/// to cross, and the time of the last read is noted once per read burst, when this handler is called anyway.
final class UpstreamResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    /// Set once the connection object exists.
    var connection: UpstreamConnection?
    /// Called when the channel goes away, to drop it from the pool.
    var onClose: ((UpstreamConnection) -> Void)?
    /// The longest silence from the upstream.
    private let readTimeout: TimeAmount
    /// When the last read burst ended.
    private var lastRead = NIODeadline.distantPast
    /// The idle timer: one per connection, looking again when it fires rather than moved on every read.
    private var idleTimer: Scheduled<Void>?

    /// A handler closing its connection after `readTimeout` of silence.
    init(readTimeout: TimeAmount) {
        self.readTimeout = readTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startIdleTimer(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        startIdleTimer(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        connection.delegate?.upstream(connection, received: unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        lastRead = context.eventLoop.now
        guard let connection else { return }
        connection.delegate?.upstreamReadComplete(connection)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        guard let connection else { return }
        onClose?(connection)
        fail(connection, .connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let connection { fail(connection, .connectionClosed) }
        context.close(promise: nil)
    }

    private func startIdleTimer(context: ChannelHandlerContext) {
        guard idleTimer == nil else { return }
        lastRead = context.eventLoop.now
        armIdleTimer(at: lastRead + readTimeout, context: context)
    }

    private func armIdleTimer(at deadline: NIODeadline, context: ChannelHandlerContext) {
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            idleTimer = nil
            guard context.channel.isActive else { return }
            let now = context.eventLoop.now
            // Waiting for an answer's head is timed by the request's first-byte deadline.
            if connection?.awaitingHead == true {
                armIdleTimer(at: now + readTimeout, context: context)
                return
            }
            if now - lastRead < readTimeout {
                armIdleTimer(at: lastRead + readTimeout, context: context)
                return
            }
            // Silent for the idle timeout: fail the answer using it (if any) and drop the connection.
            if let connection { fail(connection, .readTimeout) }
            context.close(promise: nil)
        }
    }

    private func fail(_ connection: UpstreamConnection, _ error: UpstreamError) {
        let delegate = connection.delegate
        connection.delegate = nil
        delegate?.upstream(connection, failed: error)
    }
}
