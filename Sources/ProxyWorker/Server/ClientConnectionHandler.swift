import HTTPServing
import Logging
import NIOCore
import NIOHTTP1
import RequestScanning
import Shared

/// Serves one client connection, one request at a time (NIO's pipelining handler queues the next):
/// authenticates the client token, reads the body, picks an upstream key, forwards the request over a
/// pooled upstream connection, and passes the answer back part by part as it arrives.
///
/// Everything happens on the connection's event loop, without tasks or locks on the way: this is the
/// data path of every request, and its cost per request is what the gateway's throughput is made of.
final class ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A request in progress on this connection.
    final class Pending {
        let head: HTTPRequestHead
        let exchange: ProxyExchange
        let keepAlive: Bool
        var upstreamPath = ""
        var query: Substring?
        /// The client token that authenticated the request.
        var token: TokenEntry?
        /// The largest body accepted, as in force when the request began.
        var maxBodyBytes = Int.max
        var body: ByteBuffer
        /// Upstream attempts so far, one per key.
        var attempts = 0
        /// Keys tried, in order: never the same key twice in one request.
        var tried: [Int64] = []
        /// Whether the one retry on a fresh connection after a stale pooled one was used.
        var usedFreshRetry = false
        /// What the last failed attempt left, for the answer when no attempt is left.
        var lastFailure: AttemptFailure?
        /// An error answer being read whole before deciding between failover and passing it on.
        var heldAnswer: HeldAnswer?
        /// Fires when the upstream sends nothing in time after the request went out.
        var firstByteDeadline: Scheduled<Void>?
        var status = 0
        var responseStarted = false
        var upstreamKeepAlive = false
        /// Whether the answer is an event stream: it is passed on whole events at a time.
        var eventStream = false
        /// The start of an event not yet complete.
        var eventTail: ByteBuffer?
        /// The proxy asked the upstream for the stream's usage: its usage-only event is not passed on.
        var strippingUsage = false
        /// The answer's text is kept for the chat history.
        var keepsTranscript = false
        /// The worker's body budget this request's body holds `heldBytes` of, given back when the request ends.
        var budget: BodyBudget?
        var heldBytes = 0

        init(head: HTTPRequestHead, exchange: ProxyExchange, allocator: ByteBufferAllocator) {
            self.head = head
            self.exchange = exchange
            keepAlive = head.isKeepAlive
            body = allocator.buffer(capacity: 0)
        }

        // Whichever way the request ends (answered, refused, client gone), its body leaves memory with it.
        deinit { budget?.release(heldBytes) }
    }

    /// An upstream error answer held back until its end: it decides whether another key is tried.
    struct HeldAnswer {
        let head: HTTPResponseHead
        var body: ByteBuffer
        /// Bytes beyond what is kept (the status alone then decides).
        var overflowed = false
    }

    /// Why an attempt failed.
    enum AttemptFailure {
        /// The upstream answered with an error that is the key's (401, 429, 5xx …).
        case answer(HeldAnswer)
        /// No answer: connect error, connection closed, first-byte timeout.
        case transport(UpstreamError)
    }

    /// An answer decided before any upstream is involved.
    enum LocalAnswer {
        case health
        /// A JSON answer made here (the model list).
        case json(String)
        /// `usageError` nil: refused before a token was known (counted by `RefusedRequests`), so no usage row.
        case error(HTTPResponseStatus, ErrorBody, usageError: String?)
    }

    enum State {
        case idle
        case receiving(Pending)
        case answeringLocally(Pending, LocalAnswer)
        case waitingForKey(Pending)
        case connecting(Pending)
        case proxying(Pending, UpstreamConnection)
        case closing
    }

    let core: ProxyCore
    private let registry: ConnectionRegistry
    let limits: ClientLimits
    /// What is awaited from the client and by when, and the timer that enforces it.
    var receiveDeadline: ReceiveDeadline
    var receiveTimer: Scheduled<Void>?
    /// A request part arrived in the current read.
    var partInRead = false
    /// A refused request's body is read and dropped to its end, then the connection closes.
    var discardingBody = false
    var state = State.idle
    /// The client closed its sending side: the connection closes once the current answer is out.
    var inputClosed = false
    /// The worker closed this connection when its drain timeout ran out.
    var cutByServer = false
    /// Why an exchange ended early when the connection closed under it.
    var cutReason: String { cutByServer ? "drain_timeout" : "client_cancelled" }
    var context: ChannelHandlerContext?
    // The last token this connection presented and what it resolved to, per snapshot generation:
    // a client sends the same token on every request of a connection, so it is hashed once.
    private var cachedToken: (value: String, generation: Int64, entry: TokenEntry)?

    init(core: ProxyCore, registry: ConnectionRegistry, limits: ClientLimits = ClientLimits()) {
        self.core = core
        self.registry = registry
        self.limits = limits
        receiveDeadline = ReceiveDeadline(headerTimeout: limits.headerTimeout, bodyTimeout: limits.bodyTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Added as the connection is accepted: its first head is due from now.
        receiveDeadline.headStarted(at: .now())
        armReceiveTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: - Request

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partInRead = true
        switch unwrapInboundIn(data) {
        case .head(let head):
            receiveDeadline.headReceived()
            begin(head, context: context)
        case .body(var chunk):
            guard case .receiving(let pending) = state else { return }
            if pending.body.readableBytes + chunk.readableBytes > pending.maxBodyBytes {
                rejectTooLarge(pending, context: context)
            } else if !pending.hold(chunk.readableBytes, of: limits.bodyBudget) {
                rejectBusy(pending, context: context)
            } else {
                pending.body.writeBuffer(&chunk)
            }
        case .end:
            receiveDeadline.requestReceived()
            switch state {
            case .receiving(let pending):
                dispatch(pending, context: context)
            case .answeringLocally(let pending, let answer):
                answerLocally(pending, answer, context: context)
            case .closing where discardingBody:
                context.close(promise: nil)
            default:
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        noteReadComplete(context: context)
        context.fireChannelReadComplete()
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        registry.requestStarted(on: context.channel)
        let target = head.uri
        let path: Substring
        let query: Substring?
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        } else {
            path = Substring(target)
            query = nil
        }
        let exchange = ProxyExchange(
            requestID: core.requestIDs.next(), method: head.method.rawValue, path: String(path))
        let pending = Pending(head: head, exchange: exchange, allocator: context.channel.allocator)
        pending.query = query
        // One read of the snapshot for everything decided here.
        let snapshot = core.snapshots.snapshot
        pending.maxBodyBytes = core.maxBodyBytes(snapshot)

        if path == "/healthz" {
            state = .answeringLocally(pending, .health)
            return
        }
        guard path == "/v1" || path.hasPrefix("/v1/") else {
            core.refused.refused(.unknownPath, client: context.remoteAddress, method: head.method.rawValue, path: path)
            state = .answeringLocally(
                pending,
                .error(
                    .notFound,
                    ErrorBody(
                        message: "Unknown path \(head.method.rawValue) \(path).", type: "invalid_request_error",
                        code: "not_found"), usageError: nil))
            return
        }
        // Authentication comes first: nothing else is revealed to an unknown caller.
        guard let token = authenticate(head.headers.first(name: "authorization"), snapshot: snapshot) else {
            let presented = head.headers.contains(name: "authorization")
            let message =
                presented
                ? "Incorrect or revoked proxy token."
                : "Missing bearer token. Send your proxy token as 'Authorization: Bearer <token>'."
            // Counted per minute, not a request-log row each: a flood of them must not fill the database.
            core.refused.refused(
                presented ? .invalidToken : .missingToken, client: context.remoteAddress,
                method: head.method.rawValue, path: path)
            state = .answeringLocally(
                pending,
                .error(
                    .unauthorized,
                    ErrorBody(message: message, type: "invalid_request_error", code: "invalid_api_key"),
                    usageError: nil))
            return
        }
        exchange.tokenID = token.id
        exchange.fromConsole = token.isInternal
        pending.token = token
        if head.method == .GET, path == "/v1/models", let list = snapshot.modelList {
            // The operator's model list (the models table), in OpenAI's format.
            state = .answeringLocally(pending, .json(list))
            return
        }
        guard let upstreamPath = RequestParsing.upstreamPath(path) else {
            state = .answeringLocally(
                pending,
                .error(
                    .badRequest,
                    ErrorBody(
                        message: "Invalid request path \(path).", type: "invalid_request_error", code: "invalid_path"),
                    usageError: "invalid_path"))
            return
        }
        pending.upstreamPath = upstreamPath
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > pending.maxBodyBytes {
            rejectTooLarge(pending, context: context)
            return
        }
        // A client waiting for `100 Continue` before it sends the body (curl does above 1 KiB) is told to go
        // on now that the request is accepted, instead of sending it after a wait of its own.
        if head.version != .http1_0, head.headers.first(name: "expect")?.equalsIgnoringASCIICase("100-continue") == true
        {
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        state = .receiving(pending)
    }

    private func authenticate(_ header: String?, snapshot: RoutingSnapshot) -> TokenEntry? {
        guard let token = RequestParsing.bearerToken(header) else { return nil }
        if let cached = cachedToken, cached.value == token, cached.generation == snapshot.generation {
            return cached.entry
        }
        guard let entry = snapshot.tokens[SecretDigest.sha256Hex(token)] else { return nil }
        cachedToken = (token, snapshot.generation, entry)
        return entry
    }

    /// 413 at once, without reading the rest of the body, and the connection is closed.
    private func rejectTooLarge(_ pending: Pending, context: ChannelHandlerContext) {
        let body = ErrorBody(
            message:
                "Request body is larger than the limit of \(pending.maxBodyBytes) bytes (OPENAI_PROXY_MAX_BODY_BYTES).",
            type: "invalid_request_error", code: "request_too_large")
        state = .closing
        writeError(.payloadTooLarge, body, close: true, context: context)
        core.report(pending.exchange, status: 413, error: "request_too_large")
    }

    private func answerLocally(_ pending: Pending, _ answer: LocalAnswer, context: ChannelHandlerContext) {
        switch answer {
        case .health, .json:
            let text =
                if case .json(let body) = answer { body } else { "{\"status\":\"ok\",\"worker\":\(core.worker)}" }
            var headers = HTTPHeaders([
                ("content-type", "application/json"), ("content-length", String(text.utf8.count)),
            ])
            if !pending.keepAlive { headers.add(name: "connection", value: "close") }
            finishResponse(
                head: HTTPResponseHead(version: .http1_1, status: .ok, headers: headers),
                body: context.channel.allocator.buffer(string: text), keepAlive: pending.keepAlive,
                context: context)
        case .error(let status, let body, let usageError):
            if let usageError { core.report(pending.exchange, status: Int(status.code), error: usageError) }
            writeError(status, body, close: !pending.keepAlive, context: context)
        }
    }

    // MARK: - Key and upstream

    private func dispatch(_ pending: Pending, context: ChannelHandlerContext) {
        let model = RequestParsing.model(
            in: pending.body, contentType: pending.head.headers.first(name: "content-type"))
        switch model {
        case .named(let name):
            pending.exchange.model = String(name.prefix(200))
        case .unreadable(let reason):
            if let (code, message) = RequestParsing.rejection(reason) {
                return fail(pending, .badRequest, message, code: code, type: "invalid_request_error", context: context)
            }
        case .absent:
            break
        }
        pending.exchange.requestBytes = pending.body.readableBytes
        if core.chatHistory == .full, !pending.exchange.fromConsole, ChatHistoryMode.recordsPath(pending.exchange.path)
        {
            pending.exchange.chatRequest = AnswerTranscript.requestText(pending.body)
            pending.keepsTranscript = true
        }
        if StreamUsage.applies(toUpstreamPath: pending.upstreamPath),
            let rewritten = StreamUsage.requestingUsage(pending.body)
        {
            pending.body = rewritten
            pending.strippingUsage = true
        }
        guard let token = pending.token, let limits = token.limits else {
            routeAttempt(pending, context: context)
            return
        }
        // The client token's limits: expiry, allowed models and quota from memory, then the per-minute
        // count shared by every worker (one database write, only for tokens with such a limit).
        let now = WallClock.nowMs()
        let decision = ClientTokenPolicy.check(
            // The whole name: the one kept for the usage row is cut to 200 characters.
            limits, model: model.name, modelReadable: !model.isUnreadable,
            tokensUsed: core.snapshots.tokensUsed(by: token.id), now: now)
        guard decision == .allow else { return refuse(pending, decision, context: context) }
        // A quota also reserves this request's estimate against what the token's requests in flight hold,
        // in the same shared count (one write; the collector drops it when it counts the real usage).
        let quota = limits.tokenQuota.flatMap { limit in core.quotaReservations.map { (limit, $0) } }
        let rpm = limits.rpmLimit
        guard rpm != nil || quota != nil else { return routeAttempt(pending, context: context) }
        state = .waitingForKey(pending)
        let windows = core.rateWindows
        let requestID = pending.exchange.requestID
        let estimate =
            quota == nil
            ? 0
            : QuotaEstimate.tokens(
                requestBytes: pending.exchange.requestBytes,
                completionLimit: QuotaEstimate.completionLimit(in: pending.body))
        context.eventLoop.makeFutureWithTask { () async throws -> ClientTokenDecision in
            if case let (limit, reservations)? = quota {
                let reserved = try await reservations.reserve(
                    tokenID: token.id, requestID: requestID, tokens: estimate, quota: limit, now: now)
                guard reserved == .allow else { return reserved }
            }
            guard let rpm else { return .allow }
            return try await windows.admit(tokenID: token.id, limit: rpm, now: now)
        }
        .assumeIsolated().whenComplete { [self] result in
            guard case .waitingForKey(let current) = state, current === pending, let context = self.context
            else { return }
            switch result {
            case .success(.allow):
                routeAttempt(pending, context: context)
            case .success(let refusal):
                refuse(pending, refusal, context: context)
            case .failure(let error):
                // The count could not be kept: serve rather than refuse on the proxy's own trouble.
                core.logger.warning("token limit count failed: \(error)")
                routeAttempt(pending, context: context)
            }
        }
    }

    /// Answers a request its client token may not make.
    private func refuse(_ pending: Pending, _ decision: ClientTokenDecision, context: ChannelHandlerContext) {
        fail(
            pending, HTTPResponseStatus(statusCode: decision.status), decision.message, code: decision.code,
            type: decision.type, retryAfter: decision.retryAfterSeconds, context: context)
    }

    // MARK: - Answer

    /// Answers a request that could not be served with an error; its usage row carries `code`.
    func fail(
        _ pending: Pending, _ status: HTTPResponseStatus, _ message: String, code: String,
        type: String = "server_error", retryAfter: Int? = nil, context: ChannelHandlerContext
    ) {
        let body = ErrorBody(message: message, type: type, code: code)
        let flushedByUsage = core.report(
            pending.exchange, status: Int(status.code), error: code, flushing: context.channel)
        writeError(
            status, body, close: !pending.keepAlive, retryAfter: retryAfter, flushedByUsage: flushedByUsage,
            context: context)
    }

    func writeError(
        _ status: HTTPResponseStatus, _ error: ErrorBody, close: Bool, retryAfter: Int? = nil,
        flushedByUsage: Bool = false, context: ChannelHandlerContext
    ) {
        let text = error.json
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(text.utf8.count))])
        if status == .unauthorized { headers.add(name: "www-authenticate", value: "Bearer") }
        if let retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
        if close { headers.add(name: "connection", value: "close") }
        finishResponse(
            head: HTTPResponseHead(version: .http1_1, status: status, headers: headers),
            body: context.channel.allocator.buffer(string: text), keepAlive: !close, flushedByUsage: flushedByUsage,
            context: context)
    }

    func finishResponse(
        head: HTTPResponseHead, body: ByteBuffer, keepAlive: Bool, flushedByUsage: Bool = false,
        context: ChannelHandlerContext
    ) {
        if case .closing = state {} else { state = keepAlive ? .idle : .closing }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        writeEnd(keepAlive: keepAlive, flushedByUsage: flushedByUsage, context: context)
    }

    /// Ends the answer; the connection closes once it is out if it may not be kept alive or the client
    /// already closed its side. `flushedByUsage`: the usage sender flushes the channel once the request's
    /// row is in the kernel's hands (`ProxyCore.report(_:status:error:flushing:)`), so the end is only written.
    func writeEnd(keepAlive: Bool, flushedByUsage: Bool = false, context: ChannelHandlerContext) {
        let written = context.write(wrapOutboundOut(.end(nil)))
        if !flushedByUsage { context.flush() }
        if !keepAlive || inputClosed {
            written.assumeIsolated().whenComplete { [weak self] _ in self?.context?.close(promise: nil) }
        }
    }

    // MARK: - Connection events

    func channelInactive(context: ChannelHandlerContext) {
        receiveTimer?.cancel()
        receiveTimer = nil
        switch state {
        case .proxying(let pending, let connection):
            // The answer is mid-flight: the upstream connection cannot be reused, and closing it cancels
            // the upstream's work at once.
            pending.firstByteDeadline?.cancel()
            connection.delegate = nil
            connection.channel.close(promise: nil)
            core.report(pending.exchange, status: pending.responseStarted ? pending.status : 499, error: cutReason)
        case .receiving(let pending), .waitingForKey(let pending), .connecting(let pending):
            core.report(pending.exchange, status: 499, error: cutReason)
        case .idle, .answeringLocally, .closing:
            break
        }
        state = .closing
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Backpressure: stop reading the upstream while the client cannot take more.
        if case .proxying(_, let connection) = state {
            connection.channel.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenFailure { _ in
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // A client that closed (or half-closed) after its request still gets the answer; one that
            // closes while the answer is streaming to it has gone: the upstream is cancelled at once
            // (closing here leads to channelInactive), not at the next write that would fail.
            inputClosed = true
            switch state {
            case .idle:
                context.close(promise: nil)
            case .proxying(let pending, _) where pending.responseStarted:
                context.close(promise: nil)
            default:
                break
            }
            return
        }
        if event is DrainDeadlineEvent {
            // The worker is about to close this connection: what it was serving is cut by us.
            cutByServer = true
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // A keep-alive connection that stays silent is closed; one waiting for an answer is not.
            if case .idle = state { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.logger.debug("client connection error: \(error)")
        context.close(promise: nil)
    }
}
