import NIOCore
import NIOHTTP1

/// The answer side of a proxied request: parts from the upstream connection go to the client as they
/// arrive, flushed at the end of each upstream read.
extension ClientConnectionHandler: UpstreamDelegate {
    func upstream(_ connection: UpstreamConnection, received part: HTTPClientResponsePart) {
        guard case .proxying(let pending, let current) = state, current === connection, let context else { return }
        switch part {
        case .head(let head):
            // Informational answers (100 Continue, 103 Early Hints) are not the answer.
            if head.status.code >= 100 && head.status.code < 200 { return }
            pending.responseStarted = true
            pending.status = Int(head.status.code)
            pending.upstreamKeepAlive = head.isKeepAlive
            pending.exchange.ttfbMs = pending.exchange.milliseconds()
            pending.exchange.sniffer = UsageSniffer(contentType: head.headers.first(name: "content-type"))
            var headers = ForwardedHeaders.downstream(from: head.headers)
            if !pending.keepAlive { headers.add(name: "connection", value: "close") }
            // Answer in the client's HTTP version: an HTTP/1.0 client gets no chunked encoding.
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: pending.head.version, status: head.status, headers: headers))),
                promise: nil)
        case .body(let chunk):
            pending.exchange.sniffer?.consume(chunk)
            context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
        case .end:
            connection.delegate = nil
            let pool = core.pools.pool(for: context.eventLoop)
            if pending.upstreamKeepAlive { pool.release(connection) } else { connection.channel.close(promise: nil) }
            core.report(pending.exchange, status: pending.status, error: nil)
            state = pending.keepAlive ? .idle : .closing
            writeEnd(keepAlive: pending.keepAlive, context: context)
        }
    }

    func upstreamReadComplete(_ connection: UpstreamConnection) {
        guard case .proxying(_, let current) = state, current === connection else { return }
        context?.flush()
    }

    func upstream(_ connection: UpstreamConnection, failed error: UpstreamError) {
        guard case .proxying(let pending, let current) = state, current === connection, let context else { return }
        guard pending.responseStarted else {
            // Retry only on a reused connection: a fresh one failing means the upstream itself is in trouble.
            if error == .connectionClosed && !connection.servedBefore { pending.attempts = 2 }
            upstreamFailed(pending, error, context: context)
            return
        }
        // Part of the answer went out already: the client gets a cut answer, marked by the closed connection.
        let reason = error == .readTimeout ? "upstream_timeout" : "upstream_stream_error"
        core.logger.info(
            "upstream answer ended early",
            metadata: ["reason": "\(reason)", "key.hint": "\(pending.exchange.key?.hint ?? "-")"])
        core.report(pending.exchange, status: pending.status, error: reason)
        state = .closing
        context.flush()
        context.close(promise: nil)
    }
}
