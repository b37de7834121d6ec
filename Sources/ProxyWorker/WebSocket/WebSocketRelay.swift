import HTTPServing
import NIOCore
import NIOWebSocket
import RequestScanning
import Shared

/// One relayed WebSocket: the client's connection and the upstream's, both on one event loop, each with a
/// `WebSocketRelay.Side` at the end of its pipeline. Frames pass from one side to the other as they arrive
/// (unmasked from the client, masked again towards the upstream, as a client must); a side that cannot write
/// stops the other side's reading; closing codes, pings and pongs pass through; whatever closes one side
/// closes the other. The frames' meaning (allow-list, usage) is `WebSocketSession`'s.
final class WebSocketRelay {
    /// Which connection a side is.
    enum Role {
        case client
        case upstream
    }

    /// What every usage row of the socket shares.
    struct RowTemplate {
        /// The socket's request id; each response's row adds `-1`, `-2` ….
        let requestID: String
        let path: String
        let tokenID: Int64?
        let key: RoutableKey?
        let fromConsole: Bool
    }

    private let worker: WorkerContext
    private let template: RowTemplate
    private var session: WebSocketSession
    private var client: ChannelHandlerContext?
    private var upstream: ChannelHandlerContext?
    private var responses = 0
    /// When the response being answered began: the last client message, or the socket's opening.
    private var responseStarted = ContinuousClock.now
    private var responseTimestamp = WallClock.nowMs()
    /// A side closed or the relay was told to end: frames no longer pass.
    private var ended = false

    /// A relay that records usage rows from `template` and reads frames with `session`.
    init(worker: WorkerContext, template: RowTemplate, session: WebSocketSession) {
        self.worker = worker
        self.template = template
        self.session = session
    }

    /// A side took its place in its pipeline.
    fileprivate func attached(_ role: Role, context: ChannelHandlerContext) {
        switch role {
        case .client: client = context
        case .upstream: upstream = context
        }
    }

    private func peer(of role: Role) -> ChannelHandlerContext? {
        role == .client ? upstream : client
    }

    // MARK: - Frames

    fileprivate func received(_ frame: WebSocketFrame, from role: Role) {
        guard !ended, let peer = peer(of: role) else { return }
        switch role {
        case .client:
            let payload = frame.unmaskedData
            switch session.clientFrame(opcode: frame.opcode, fin: frame.fin, payload: payload) {
            case .forward:
                noteClientMessage(frame.opcode)
                peer.write(
                    NIOAny(
                        WebSocketFrame(
                            fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3, opcode: frame.opcode,
                            maskKey: .random(), data: payload)),
                    promise: nil)
            case .hold:
                break
            case .forwardMessage(let message):
                noteClientMessage(.text)
                peer.write(
                    NIOAny(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: message)), promise: nil)
            case .refuse(let error):
                guard let client else { return }
                // An `error` event, as the Realtime and Responses APIs send one: the socket stays open.
                let text = "{\"type\":\"error\"," + error.json.dropFirst()
                client.writeAndFlush(
                    NIOAny(
                        WebSocketFrame(fin: true, opcode: .text, data: client.channel.allocator.buffer(string: text))),
                    promise: nil)
            }
        case .upstream:
            var outgoing = frame
            if frame.maskKey != nil {
                // A server must not mask; pass the data on as the client can read it.
                outgoing.data = frame.unmaskedData
                outgoing.maskKey = nil
            }
            if let ended = session.upstreamFrame(opcode: frame.opcode, fin: frame.fin, payload: outgoing.data) {
                record(ended)
            } else if let created = session.takeCreatedResponse(), let key = template.key,
                let token = template.tokenID
            {
                worker.learnCreated(created, key: key.id, token: token, at: WallClock.nowMs())
            }
            peer.write(NIOAny(outgoing), promise: nil)
        }
        if frame.opcode == .connectionClose { peer.flush() }
    }

    /// A data message from the client starts the time of the response it may ask for.
    private func noteClientMessage(_ opcode: WebSocketOpcode) {
        guard opcode == .text || opcode == .binary else { return }
        responseStarted = .now
        responseTimestamp = WallClock.nowMs()
    }

    /// One usage row for a response the upstream finished.
    private func record(_ ended: WebSocketSession.ResponseEnded) {
        responses += 1
        var draft = UsageDraft(
            requestID: template.requestID + "-\(responses)", started: responseStarted, timestamp: responseTimestamp,
            method: "GET", path: template.path)
        draft.tokenID = template.tokenID
        draft.key = template.key
        draft.fromConsole = template.fromConsole
        draft.model = ended.model.map { String($0.prefix(200)) }
        _ = worker.record(&draft, RequestOutcome(status: 200, error: ended.error), now: .now, usage: ended.usage)
        // The next response of the socket is timed from here unless the client asks for one.
        responseStarted = .now
        responseTimestamp = WallClock.nowMs()
    }

    fileprivate func readComplete(from role: Role) {
        peer(of: role)?.flush()
    }

    /// Back-pressure: a side that cannot take more stops the other side's reading until it can.
    fileprivate func writabilityChanged(_ role: Role, writable: Bool) {
        guard let peer = peer(of: role) else { return }
        try? peer.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: writable)
        if writable { peer.read() }
    }

    // MARK: - Ending

    /// A side's connection closed: the other closes once what was written to it is out.
    fileprivate func closed(_ role: Role) {
        switch role {
        case .client: client = nil
        case .upstream: upstream = nil
        }
        ended = true
        if let peer = peer(of: role) {
            peer.flush()
            peer.close(promise: nil)
        }
    }

    /// The proxy ends the socket (drain deadline, idle): both sides get a close frame with `code`, then close.
    func goAway(_ code: WebSocketErrorCode, reason: String) {
        guard !ended else { return }
        ended = true
        var written: [(ChannelHandlerContext, EventLoopFuture<Void>)] = []
        for (side, masked) in [(client, false), (upstream, true)] {
            guard let side else { continue }
            var data = side.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
            data.write(webSocketErrorCode: code)
            data.writeString(reason)
            let frame = WebSocketFrame(
                fin: true, opcode: .connectionClose, maskKey: masked ? .random() : nil, data: data)
            written.append((side, side.writeAndFlush(NIOAny(frame))))
        }
        // Both frames are on their way before either side closes (a close closes the other side too).
        for (side, write) in written {
            write.assumeIsolated().whenComplete { _ in side.close(promise: nil) }
        }
    }

    /// The handler one side of the relay puts at the end of its pipeline.
    final class Side: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame

        private let relay: WebSocketRelay
        private let role: Role
        /// The socket's idle deadline ends it with this code (client side only).
        private let idleCode: WebSocketErrorCode?

        /// The `role` side of `relay`.
        init(relay: WebSocketRelay, role: Role) {
            self.relay = relay
            self.role = role
            idleCode = role == .client ? .goingAway : nil
        }

        func handlerAdded(context: ChannelHandlerContext) {
            relay.attached(role, context: context)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            relay.received(unwrapInboundIn(data), from: role)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            relay.readComplete(from: role)
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            relay.writabilityChanged(role, writable: context.channel.isWritable)
            context.fireChannelWritabilityChanged()
        }

        func channelInactive(context: ChannelHandlerContext) {
            relay.closed(role)
            context.fireChannelInactive()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is DrainDeadlineEvent {
                relay.goAway(.goingAway, reason: "server shutting down")
            } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all, let idleCode {
                relay.goAway(idleCode, reason: "idle timeout")
            } else if event is ChannelShouldQuiesceEvent {
                // A socket has no request boundary to stop at: it runs until the drain deadline.
            } else {
                context.fireUserInboundEventTriggered(event)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A protocol error (a frame too large, a bad opcode): the socket cannot go on.
            relay.closed(role)
            context.close(promise: nil)
        }
    }
}
