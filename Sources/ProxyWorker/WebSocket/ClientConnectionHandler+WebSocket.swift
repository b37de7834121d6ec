import HTTPServing
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Shared

/// The switch from HTTP to a relayed WebSocket, once the upstream accepted the handshake with the key chosen
/// for the socket: both connections trade their HTTP handlers for NIO's frame decoder and encoder and a
/// `WebSocketRelay` side, and this handler leaves the client's pipeline.
extension ClientConnectionHandler {
    /// The largest frame read from either side (Realtime audio arrives as base64 text of a few hundred KiB).
    static let maxWebSocketFrame = 16 << 20

    /// Answers the client's handshake with `upstreamHead`'s `101` and turns both connections into the socket.
    func upgradeToWebSocket(_ upstreamHead: HTTPResponseHead, context: ChannelHandlerContext) {
        guard let connection = upstream, let upgrade = request.request.webSocket else {
            context.close(promise: nil)
            return
        }
        upstream = nil
        connection.delegate = nil
        let draft = request.request.draft
        if let key = draft.key {
            worker.health.report(.success, key: key, snapshot: request.snapshot.routing, now: WallClock.nowMs())
        }
        let relay = WebSocketRelay(
            worker: worker,
            template: WebSocketRelay.RowTemplate(
                requestID: draft.requestID, path: draft.path, tokenID: draft.tokenID, key: draft.key,
                fromConsole: draft.fromConsole),
            session: WebSocketSession(
                allowedModels: request.request.token?.limits?.allowedModels, model: upgrade.queryModel,
                recordsResponses: draft.path == "/v1/responses",
                objects: draft.tokenID.flatMap { token in
                    draft.key.map { key in
                        WebSocketObjectCheck(tokenID: token, keyID: key.id, lookup: worker.objects.object)
                    }
                }))
        let clientHeaders = upgrade.clientHeaders(fromUpstream: upstreamHead.headers)
        let idle = limits.webSocketIdleTimeout
        endRequest(keepAlive: false)
        let clientChannel = context.channel
        let upstreamChannel = connection.channel
        // After the upstream decoder's read is over: it is removed below, and hands on what followed the `101`.
        context.eventLoop.assumeIsolated().execute { [self] in
            do {
                let upstreamPipeline = upstreamChannel.pipeline.syncOperations
                try upstreamPipeline.removeHandler(
                    context: upstreamPipeline.context(handlerType: UpstreamResponseHandler.self))
                try upstreamPipeline.addHandlers([
                    ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: Self.maxWebSocketFrame)),
                    WebSocketFrameEncoder(), WebSocketRelay.Side(relay: relay, role: .upstream),
                ])

                // The client's `101` goes out through the HTTP handlers, which then leave.
                context.writeAndFlush(
                    wrapOutboundOut(
                        .head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: clientHeaders))),
                    promise: nil)
                let clientPipeline = clientChannel.pipeline.syncOperations
                try clientPipeline.addHandlers([
                    ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: Self.maxWebSocketFrame)),
                    WebSocketFrameEncoder(), IdleStateHandler(allTimeout: idle),
                    WebSocketRelay.Side(relay: relay, role: .client),
                ])
                try clientPipeline.removeHandler(
                    context: clientPipeline.context(handlerType: ClientResponseEncoder.self))
                try clientPipeline.removeHandler(
                    context: clientPipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self))
                try clientPipeline.removeHandler(context: clientPipeline.context(handlerType: ReadAheadHandler.self))
                try clientPipeline.removeHandler(
                    context: clientPipeline.context(handlerType: HTTPServerPipelineHandler.self))
                try clientPipeline.removeHandler(context: context)

                // Last, so that frames sent right after the `101` reach a client side already in place.
                try upstreamPipeline.removeHandler(
                    context: upstreamPipeline.context(handlerType: UpstreamRequestEncoder.self))
                // The decoder hands on what followed the `101` as it leaves, a moment later, outside any read whose
                // end would flush it.
                upstreamPipeline.removeHandler(
                    context: try upstreamPipeline.context(handlerType: ByteToMessageHandler<HTTPResponseDecoder>.self)
                ).assumeIsolated().whenComplete { _ in
                    clientChannel.flush()
                    // The pipelining handler held reads back while the handshake was answered.
                    clientChannel.read()
                    upstreamChannel.read()
                }
            } catch {
                worker.logger.warning("could not switch a connection to WebSocket: \(error)")
                clientChannel.close(promise: nil)
                upstreamChannel.close(promise: nil)
            }
        }
    }
}
