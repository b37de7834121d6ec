import HTTPServing
import Logging
import NIOCore
import NIOHTTP1
import Shared

/// Serves one client connection, one request at a time (NIO's pipelining handler queues the next). What
/// happens to a request is decided by its `RequestStateMachine`; this handler only feeds it the events of
/// the connection, the upstream and the timers, and performs the actions it returns (`+Actions`).
///
/// Everything happens on the connection's event loop, without tasks or locks on the way: this is the data
/// path of every request, and its cost per request is what the gateway's throughput is made of.
final class ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let worker: WorkerContext
    private let registry: ConnectionRegistry
    let limits: ClientLimits
    /// The request being served (when `serving`), or the last one served; mutated in place. Not an optional:
    /// reading a field through an optional this size copied the whole machine (measured: 2 % of a worker's CPU).
    var request: RequestStateMachine
    /// A request is in progress.
    var serving = false
    /// Counts the requests of this connection: a late answer (timer, key pick, pool) for an earlier one is dropped.
    var requestNumber: UInt64 = 0
    /// The upstream connection of the current attempt.
    var upstream: UpstreamConnection?
    /// The fetches of a list's objects under way.
    var listFetches: [ObjectFetch] = []
    /// When the current attempt's answer head is due from the upstream; nil when none is awaited.
    var firstByteDue: NIODeadline?
    /// The one timer that enforces `firstByteDue` for the connection's requests, and when it fires.
    var firstByteTimer: Scheduled<Void>?
    var firstByteTimerAt = NIODeadline.distantFuture
    /// What is awaited from the client and by when (the head, the body, or on a kept-alive connection the next
    /// request), and the one timer that enforces it, and when it fires.
    var receiveDeadline: ReceiveDeadline
    var receiveTimer: Scheduled<Void>?
    var receiveTimerAt = NIODeadline.distantFuture
    /// A request part arrived in the current read.
    var partInRead = false
    /// The connection closes once what is being written is out: no further request is served.
    var closing = false
    /// The client closed its sending side: the connection closes once the current answer is out.
    var inputClosed = false
    /// The usage sender flushes this channel once the rows of the answers written are out: until then the
    /// handler flushes nothing, so no answer's end (not even one of an earlier pipelined request) reaches the
    /// client before its row. Cleared by that flush (`flush(context:)`).
    var usageFlushPending = false
    /// The worker closed this connection when its drain timeout ran out.
    var cutByServer = false
    var context: ChannelHandlerContext?
    /// The connection's response encoder, told which answers go to a HEAD request (none in a test's pipeline).
    private(set) var responseEncoder: ClientResponseEncoder?
    /// The connection's read-ahead, told when a request was received whole and when its answer ended.
    private(set) var readAhead: ReadAheadHandler?
    // The last token this connection presented and what it resolved to, per snapshot generation:
    // a client sends the same token on every request of a connection, so it is hashed once.
    private var cachedToken: (value: String, generation: Int64, entry: TokenEntry)?

    init(worker: WorkerContext, registry: ConnectionRegistry, limits: ClientLimits = ClientLimits()) {
        self.worker = worker
        self.registry = registry
        self.limits = limits
        receiveDeadline = ReceiveDeadline(
            headerTimeout: limits.headerTimeout, bodyTimeout: limits.bodyTimeout,
            keepAliveTimeout: limits.keepAliveTimeout)
        request = .idle(snapshot: worker.snapshots.forRequest)
    }

    /// No request is in progress and the connection stays open.
    var isIdle: Bool { !serving && !closing }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        responseEncoder = try? context.pipeline.syncOperations.handler(type: ClientResponseEncoder.self)
        readAhead = try? context.pipeline.syncOperations.handler(type: ReadAheadHandler.self)
        // Added as the connection is accepted: its first head is due from now (the loop's clock, which a test
        // can move).
        receiveDeadline.headStarted(at: context.eventLoop.now)
        armReceiveTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        receiveTimer?.cancel()
        receiveTimer = nil
        endRequest(keepAlive: false)
        self.context = nil
    }

    // MARK: - Request

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partInRead = true
        switch unwrapInboundIn(data) {
        case .head(let head):
            receiveDeadline.headReceived()
            guard !closing else { return }
            begin(head, context: context)
        case .body(var chunk):
            let budget = limits.bodyBudget
            feed { $0.bodyReceived(&chunk, reserve: budget.reserve) }
        case .end:
            receiveDeadline.requestReceived()
            // Before the machine hears of it: a request answered here is answered within this call.
            if serving { readAhead?.requestReceived() }
            // Answered before its body ended (a refusal): the connection is idle from now.
            if isIdle { receiveDeadline.answerEnded(at: context.eventLoop.now) }
            let keepsTexts = worker.chatHistory == .full
            let objects = worker.objects
            feed { $0.endReceived(keepsTexts: keepsTexts, objects: objects.object) }
        }
    }

    /// A flush from the channel's side: the usage sender's, after the rows of the answers written went out.
    func flush(context: ChannelHandlerContext) {
        usageFlushPending = false
        context.flush()
    }

    /// Flushes what was written, unless the usage sender will (see `usageFlushPending`).
    func flushUnlessUsagePending(context: ChannelHandlerContext) {
        if !usageFlushPending { context.flush() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        noteReadComplete(context: context)
        context.fireChannelReadComplete()
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        // Only a connection's first request changes what the registry knows (`requestStarted`): for the
        // others its lock would be taken for nothing.
        if requestNumber == 0 { registry.requestStarted(on: context.channel) }
        requestNumber &+= 1
        // Requests are answered one at a time, in order: the previous answer has ended.
        if head.method == .HEAD { responseEncoder?.answeringHead = true }
        let target = head.uri
        let path: Substring
        var query: Substring?
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        } else {
            path = Substring(target)
        }
        // The one read of the snapshot for the whole request.
        let snapshot = worker.snapshots.forRequest
        var inFlight = InFlightRequest(
            head: head,
            draft: UsageDraft(
                requestID: worker.requestIDs.next(), started: .now, timestamp: WallClock.nowMs(),
                method: head.method.rawValue, path: String(path)))
        inFlight.query = query
        inFlight.readsUsage = worker.recording.enabled
        request = RequestStateMachine(request: inFlight, snapshot: snapshot, upstreamHost: worker.upstream.host)
        serving = true
        feed { $0.headReceived(path: path, authenticate: { self.authenticate($0, snapshot: snapshot.routing) }) }
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

    /// Hands an event to the current request's machine and performs what it returns.
    func feed(_ event: (inout RequestStateMachine) -> RequestStateMachine.Action) {
        guard serving, let context else { return }
        let action = event(&request)
        perform(action, context: context)
    }

    // MARK: - Connection events

    func channelInactive(context: ChannelHandlerContext) {
        receiveTimer?.cancel()
        receiveTimer = nil
        let reason = cutByServer ? "drain_timeout" : "client_cancelled"
        feed { $0.clientGone(reason: reason) }
        dropUpstream()
        endRequest(keepAlive: false)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Backpressure: stop reading the upstream while the client cannot take more.
        if let upstream {
            let writable = context.channel.isWritable
            if !writable { upstream.readingPaused = true }
            upstream.channel.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // A client that closed (or half-closed) after its request still gets the answer; one that
            // closes while the answer is streaming to it has gone: the upstream is cancelled at once
            // (closing here leads to channelInactive), not at the next write that would fail.
            inputClosed = true
            if isIdle || request.state == .streaming { context.close(promise: nil) }
            return
        }
        if event is DrainDeadlineEvent {
            // The worker is about to close this connection: what it was serving is cut by us.
            cutByServer = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        worker.logger.debug("client connection error: \(error)")
        // Bytes that make no HTTP request: 400, unless an answer is under way (what NIO's
        // `HTTPServerProtocolErrorHandler` did, whose look at every part of every answer cost a dynamic cast).
        if error is HTTPParserError, responseEncoder?.answerOpen != true {
            let head = HTTPResponseHead(
                version: .http1_1, status: .badRequest,
                headers: HTTPHeaders([("connection", "close"), ("content-length", "0")]))
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.close(promise: nil)
    }
}
