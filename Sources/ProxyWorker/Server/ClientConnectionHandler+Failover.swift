import NIOCore
import NIOHTTP1
import Shared

/// Key choice and failover: each attempt goes to a key that may serve the request and was not tried
/// yet; a key that fails before any byte reached the client is marked and the next key is tried, up to
/// the configured number of attempts.
extension ClientConnectionHandler {
    /// Picks a key for the next attempt and starts it, or answers when no key may serve the request.
    func routeAttempt(_ pending: Pending, context: ChannelHandlerContext) {
        let snapshot = core.snapshots.snapshot
        let route = core.health.route(
            snapshot, model: pending.exchange.model, excluding: pending.tried, now: WallClock.nowMs())
        switch route {
        case .candidates(let candidates):
            if pending.attempts >= core.maxAttempts {
                giveUpAfterAttempts(pending, context: context)
                return
            }
            pick(pending, from: candidates, context: context)
        case .modelNotFound:
            let model = pending.exchange.model ?? ""
            fail(
                pending, .notFound, "The model `\(model)` does not exist or no upstream key can reach it.",
                code: "model_not_found", type: "invalid_request_error", context: context)
        case .exhausted:
            giveUpAfterAttempts(pending, context: context)
        case .unavailable(let retryAfter):
            var message =
                "No upstream key can serve this request now: every key that reaches it is cooling down, out of quota or invalid."
            if let failure = pending.lastFailure { message += " Last upstream failure: \(describe(failure))." }
            fail(
                pending, .serviceUnavailable, message, code: "no_available_key", retryAfter: retryAfter,
                context: context)
        case .noKeys:
            fail(
                pending, .serviceUnavailable,
                "No upstream API key is available. Add one with `openai-proxy keys add`.", code: "no_available_key",
                context: context)
        }
    }

    private func pick(_ pending: Pending, from candidates: [RoutableKey], context: ChannelHandlerContext) {
        let selector = core.selector(core.snapshots.snapshot)
        switch selector.pickWithoutWaiting(from: candidates) {
        case .key(let key):
            connect(pending, key: key, context: context)
        case .none:
            routeAttempt(pending, context: context)
        case .needsDatabase:
            state = .waitingForKey(pending)
            context.eventLoop.makeFutureWithTask { try await selector.pick(from: candidates) }
                .assumeIsolated().whenComplete { [self] result in
                    guard case .waitingForKey(let current) = state, current === pending, let context = self.context
                    else { return }
                    switch result {
                    case .success(let key?):
                        connect(pending, key: key, context: context)
                    case .success(nil):
                        routeAttempt(pending, context: context)
                    case .failure(let error):
                        core.logger.error("key selection failed: \(error)")
                        fail(
                            pending, .internalServerError, "The proxy could not select an upstream key.",
                            code: "key_selection_failed", context: context)
                    }
                }
        }
    }

    /// Starts an attempt with `key`; `fresh` retries the same key on a new connection after a pooled
    /// one turned out closed, which is not a new attempt.
    func connect(_ pending: Pending, key: RoutableKey, context: ChannelHandlerContext, fresh: Bool = false) {
        pending.exchange.key = key
        if !fresh {
            pending.attempts += 1
            pending.tried.append(key.id)
        }
        state = .connecting(pending)
        let pool = core.pools.pool(for: context.eventLoop)
        let timeout = core.connectTimeout(core.snapshots.snapshot)
        let connecting = fresh ? pool.connect(timeout: timeout) : pool.acquire(connectTimeout: timeout)
        connecting.assumeIsolated().whenComplete { [self] result in
            guard case .connecting(let current) = state, current === pending, let context = self.context else {
                // The client went away meanwhile; an unused connection goes back to the pool.
                if case .success(let connection) = result { pool.release(connection) }
                return
            }
            switch result {
            case .success(let connection):
                send(pending, over: connection, context: context)
            case .failure(let error):
                attemptFailed(pending, error as? UpstreamError ?? .connectFailed("\(error)"), context: context)
            }
        }
    }

    private func send(_ pending: Pending, over connection: UpstreamConnection, context: ChannelHandlerContext) {
        state = .proxying(pending, connection)
        connection.delegate = self
        connection.awaitingHead = true
        guard let key = pending.exchange.key else { return }
        var uri = core.pools.target.pathPrefix + pending.upstreamPath
        if let query = pending.query { uri += "?" + query }
        var headers = ForwardedHeaders.upstream(
            from: pending.head.headers, key: key.value, authority: core.pools.target.authority)
        let method = pending.head.method
        if pending.body.readableBytes > 0 || method == .POST || method == .PUT || method == .PATCH {
            headers.add(name: "content-length", value: String(pending.body.readableBytes))
        }
        let channel = connection.channel
        channel.write(
            HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)),
            promise: nil)
        if pending.body.readableBytes > 0 {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(pending.body)), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let deadline = core.firstByteTimeout(core.snapshots.snapshot)
        pending.firstByteDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: deadline) {
            [self] in
            guard case .proxying(let current, let busy) = state, current === pending, busy === connection,
                let context = self.context
            else { return }
            connection.delegate = nil
            connection.channel.close(promise: nil)
            attemptFailed(pending, .firstByteTimeout, context: context)
        }
    }

    /// The upstream connection failed before the answer's head arrived.
    func upstreamFailedBeforeAnswer(
        _ pending: Pending, _ error: UpstreamError, reused: Bool, context: ChannelHandlerContext
    ) {
        pending.firstByteDeadline?.cancel()
        if error == .connectionClosed, reused, !pending.usedFreshRetry, let key = pending.exchange.key {
            // A kept-alive connection the upstream closed while it sat in the pool: the same key once more
            // on a new connection. A fresh connection failing means the upstream itself is in trouble.
            pending.usedFreshRetry = true
            connect(pending, key: key, context: context, fresh: true)
            return
        }
        attemptFailed(pending, error, context: context)
    }

    /// An attempt got no answer (connect error, connection closed, first-byte timeout): a transient
    /// failure of its key.
    func attemptFailed(_ pending: Pending, _ error: UpstreamError, context: ChannelHandlerContext) {
        attemptFailed(
            pending, .transport(error), outcome: .transient(status: nil, reason: describe(error)), context: context)
    }

    /// An attempt failed before any byte reached the client, with what `outcome` says of its key: the key
    /// is marked, and the request moves on to another key while attempts and keys are left. A refusal that
    /// may not mark the key (a key this client token's requests marked awaits its probe) is taken as the
    /// request's: the client gets it as it came.
    func attemptFailed(
        _ pending: Pending, _ failure: AttemptFailure, outcome: KeyOutcome, context: ChannelHandlerContext
    ) {
        pending.firstByteDeadline?.cancel()
        pending.lastFailure = failure
        if let key = pending.exchange.key {
            let marked = core.health.report(
                outcome, key: key, snapshot: core.snapshots.snapshot, now: WallClock.nowMs(),
                token: pending.exchange.tokenID)
            if !marked, case .answer(let held) = failure {
                passOn(held, pending: pending, context: context)
                return
            }
            core.logger.info(
                "upstream attempt failed",
                metadata: [
                    "request.id": "\(pending.exchange.requestID)", "key.id": "\(key.id)", "key.hint": "\(key.hint)",
                    "attempt": "\(pending.attempts)", "failure": "\(describe(failure))",
                ])
        }
        routeAttempt(pending, context: context)
    }

    /// Every attempt was used, or every key that may serve the request was tried: the client gets the last
    /// failure as it was.
    private func giveUpAfterAttempts(_ pending: Pending, context: ChannelHandlerContext) {
        let host = core.upstream.host
        switch pending.lastFailure {
        case .answer(let held):
            passOn(held, pending: pending, context: context)
        case .transport(.connectFailed(let reason)):
            core.logger.warning("upstream unreachable", metadata: ["upstream.host": "\(host)", "error": "\(reason)"])
            fail(
                pending, .badGateway, "The upstream \(host) is unreachable: \(reason).", code: "upstream_unreachable",
                context: context)
        case .transport(.connectionClosed):
            fail(
                pending, .badGateway, "The upstream \(host) closed the connection before answering.",
                code: "upstream_closed", context: context)
        case .transport(.firstByteTimeout), .transport(.readTimeout):
            fail(
                pending, .gatewayTimeout, "The upstream \(host) did not answer in time.", code: "upstream_timeout",
                context: context)
        case nil:
            fail(
                pending, .internalServerError, "The proxy could not select an upstream key.",
                code: "key_selection_failed", context: context)
        }
    }

    /// Sends a held upstream answer to the client as it came, but for what names the pool's keys or
    /// accounts (`KeyScrubber`).
    func passOn(_ held: HeldAnswer, pending: Pending, context: ChannelHandlerContext) {
        pending.responseStarted = true
        pending.status = Int(held.head.status.code)
        var body = held.body
        if let scrubbed = KeyScrubber.scrubbed(Array(buffer: held.body), servingKey: pending.exchange.key?.value) {
            body = context.channel.allocator.buffer(bytes: scrubbed)
        }
        var headers = ForwardedHeaders.downstream(from: held.head.headers)
        Self.addServedKey(pending, to: &headers)
        headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        if !pending.keepAlive { headers.add(name: "connection", value: "close") }
        let flushedByUsage = core.report(
            pending.exchange, status: pending.status, error: nil, flushing: context.channel)
        finishResponse(
            head: HTTPResponseHead(version: pending.head.version, status: held.head.status, headers: headers),
            body: body, keepAlive: pending.keepAlive, flushedByUsage: flushedByUsage, context: context)
    }

    private func describe(_ failure: AttemptFailure) -> String {
        switch failure {
        case .answer(let held): return "upstream answered \(held.head.status.code)"
        case .transport(let error): return describe(error)
        }
    }

    private func describe(_ error: UpstreamError) -> String {
        switch error {
        case .connectFailed(let reason): return "connect failed: \(reason)"
        case .connectionClosed: return "connection closed before the answer"
        case .firstByteTimeout:
            return "no answer within \(Double(core.firstByteTimeout(core.snapshots.snapshot).nanoseconds) / 1e9) s"
        case .readTimeout: return "upstream silent for too long"
        }
    }
}
