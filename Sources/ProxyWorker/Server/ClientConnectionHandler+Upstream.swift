import HTTPServing
import NIOCore
import NIOHTTP1
import Shared

/// The upstream side of an attempt: the pooled connection, the request sent over it, and the answer's parts
/// fed to the machine as they arrive, flushed to the client at the end of each upstream read.
extension ClientConnectionHandler: UpstreamDelegate {
    /// Gets a connection for an attempt with `key`: from the pool, or a new one (`fresh`) after a pooled one
    /// turned out closed.
    func connect(_ key: RoutableKey, fresh: Bool, context: ChannelHandlerContext) {
        let pool = worker.pools.pool(for: context.eventLoop)
        // A kept-alive connection in the pool (nearly every request under load) is taken at once: no future,
        // no callback.
        if !fresh, let connection = pool.takeIdle() {
            upstream = connection
            feed { $0.connected() }
            return
        }
        let timeout = request.snapshot.settings.connectTimeout
        let connecting =
            fresh
            ? pool.connect(timeout: timeout, upgrading: request.request.webSocket != nil)
            : pool.acquire(connectTimeout: timeout)
        let number = requestNumber
        connecting.assumeIsolated().whenComplete { [self] result in
            guard number == requestNumber, request.state == .connecting, self.context != nil else {
                // The client went away meanwhile; an unused connection goes back to the pool.
                if case .success(let connection) = result { pool.release(connection) }
                return
            }
            switch result {
            case .success(let connection):
                upstream = connection
                feed { $0.connected() }
            case .failure(let error):
                feed { $0.upstreamFailed(error as? UpstreamError ?? .connectFailed("\(error)"), reused: false) }
            }
        }
    }

    /// Sends the request with `key` over the attempt's connection and starts its first-byte timer.
    func send(_ key: RoutableKey, context: ChannelHandlerContext) {
        guard let connection = upstream, serving else { return }
        connection.delegate = self
        connection.awaitingHead = true
        let head = request.request.head
        var uri = worker.pools.target.pathPrefix + request.request.upstreamPath
        if let query = request.request.query { uri += "?" + query }
        let bodyBytes = request.request.body.readableBytes
        let framedByLength = bodyBytes > 0 || head.method == .POST || head.method == .PUT || head.method == .PATCH
        var headers = ForwardedHeaders.upstream(
            from: head.headers, key: key.value, authority: worker.pools.target.authority,
            contentLength: framedByLength ? bodyBytes : nil)
        if let upgrade = request.request.webSocket { headers = upgrade.upstreamHeaders(headers) }
        let channel = connection.channel
        let requestHead = HTTPClientRequestPart.head(
            HTTPRequestHead(version: .http1_1, method: head.method, uri: uri, headers: headers))
        if framedByLength {
            // With a content-length the encoder writes nothing for `.end` (no chunked framing to close): the
            // request ends with its body, and an `.end` would only cost one more trip through the upstream
            // pipeline (measured: about 6 % of a worker's instructions per request).
            // The body rides with the head: one write through the pipeline.
            if bodyBytes > 0 { connection.requestEncoder.bodyWithNextHead = request.request.body }
            channel.writeAndFlush(requestHead, promise: nil)
        } else {
            channel.write(requestHead, promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
        awaitFirstByte(within: request.snapshot.settings.firstByteTimeout, context: context)
    }

    /// The upstream's answer head is due `timeout` from now. One timer serves all the connection's requests:
    /// it is armed only when none is pending or this deadline comes first, and looks again when it fires, so
    /// a request answered in time costs no timer of its own.
    private func awaitFirstByte(within timeout: TimeAmount, context: ChannelHandlerContext) {
        let due = context.eventLoop.now + timeout
        firstByteDue = due
        if firstByteTimer != nil, firstByteTimerAt <= due { return }
        firstByteTimer?.cancel()
        armFirstByteTimer(at: due, context: context)
    }

    private func armFirstByteTimer(at deadline: NIODeadline, context: ChannelHandlerContext) {
        firstByteTimerAt = deadline
        firstByteTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            firstByteTimer = nil
            guard let due = firstByteDue, let context = self.context else { return }
            if context.eventLoop.now < due {
                armFirstByteTimer(at: due, context: context)
                return
            }
            firstByteDue = nil
            guard serving, upstream != nil, request.state == .awaitingHead else { return }
            dropUpstream()
            feed { $0.firstByteTimedOut() }
        }
    }

    func upstream(_ connection: UpstreamConnection, received part: HTTPClientResponsePart) {
        guard connection === upstream, serving, let context else { return }
        switch part {
        case .head(let head):
            if head.status.code >= 200 {
                firstByteDue = nil
                connection.awaitingHead = false
                if let key = request.request.draft.key,
                    let figures = RateLimitHeaders.state(
                        now: WallClock.nowMs(), header: { head.headers.first(name: $0) })
                {
                    worker.health.observe(figures, keyID: key.id)
                }
            }
            let limit = worker.chatHistoryMaxBytes
            feed { $0.upstreamHeadReceived(head, now: .now, transcriptLimit: limit) }
        case .body(var chunk):
            feed { $0.upstreamBodyReceived(&chunk) }
        case .end:
            // A socket's handshake keeps its connection: it becomes the relay's upstream side.
            if request.upgradeHead != nil {
                feed { $0.upstreamEndReceived(now: .now) }
                return
            }
            connection.delegate = nil
            upstream = nil
            let pool = worker.pools.pool(for: context.eventLoop)
            if request.upstreamKeepAlive { pool.release(connection) } else { connection.channel.close(promise: nil) }
            feed { $0.upstreamEndReceived(now: .now) }
        }
    }

    func upstreamReadComplete(_ connection: UpstreamConnection) {
        guard connection === upstream, let context else { return }
        flushUnlessUsagePending(context: context)
    }

    func upstream(_ connection: UpstreamConnection, failed error: UpstreamError) {
        guard connection === upstream, serving else { return }
        firstByteDue = nil
        upstream = nil
        feed { $0.upstreamFailed(error, reused: connection.servedBefore) }
    }

    /// The answer is the client's: the key served, its head goes out now, its body as it comes.
    func forwardHead(_ head: HTTPResponseHead, context: ChannelHandlerContext) {
        guard serving else { return }
        if let key = request.request.draft.key {
            worker.health.report(.success, key: key, snapshot: request.snapshot.routing, now: WallClock.nowMs())
        }
        var headers = ForwardedHeaders.downstream(from: head.headers)
        addServedKey(to: &headers)
        if !request.request.keepAlive { headers.add(name: "connection", value: "close") }
        // Answer in the client's HTTP version: an HTTP/1.0 client gets no chunked encoding.
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: request.request.head.version, status: head.status, headers: headers))),
            promise: nil)
    }

    /// Sends a held upstream answer to the client as it came, but for what names the pool's keys or accounts
    /// (`KeyScrubber`).
    func passOn(_ held: RequestStateMachine.HeldAnswer, keySucceeded: Bool, context: ChannelHandlerContext) {
        guard serving else { return }
        let key = request.request.draft.key
        if keySucceeded, let key {
            worker.health.report(.success, key: key, snapshot: request.snapshot.routing, now: WallClock.nowMs())
        }
        var body = held.body
        if let scrubbed = KeyScrubber.scrubbed(Array(buffer: held.body), servingKey: key?.value) {
            body = context.channel.allocator.buffer(bytes: scrubbed)
        }
        var headers = ForwardedHeaders.downstream(from: held.head.headers)
        addServedKey(to: &headers)
        headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        let keepAlive = request.request.keepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        respond(
            HTTPResponseHead(version: request.request.head.version, status: held.head.status, headers: headers),
            body: body, keepAlive: keepAlive, context: context)
    }

    /// The upstream broke off in the middle of the answer: no retry. An event stream ends with an error event
    /// after its last whole event; other answers are cut, marked by the closed connection.
    func cutAnswer(key: RoutableKey?, reason: String, event: ErrorBody?, context: ChannelHandlerContext) {
        worker.logger.info(
            "upstream answer ended early", metadata: ["reason": "\(reason)", "key.hint": "\(key?.hint ?? "-")"])
        if let key {
            worker.health.report(
                .transient(status: nil, reason: "answer cut: \(reason)"), key: key, snapshot: request.snapshot.routing,
                now: WallClock.nowMs())
        }
        dropUpstream()
        endRequest(keepAlive: false)
        if let event {
            let text = "data: " + event.json + "\n\n"
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            writeEnd(keepAlive: false, context: context)
        } else {
            context.flush()
            context.close(promise: nil)
        }
    }

    /// Names the key that served an answer to the admin console's own token (and to no one else).
    private func addServedKey(to headers: inout HTTPHeaders) {
        guard request.request.draft.fromConsole, let key = request.request.draft.key else { return }
        headers.add(name: ClientToken.servedKeyHeader, value: String(key.id))
    }
}
