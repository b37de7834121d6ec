import HTTPServing
import NIOCore
import NIOHTTP1
import RequestScanning
import Shared

/// What the handler does for the machine: writes to the client, key health, the token-limit count, the
/// selector, and the one hand-off of a finished request's usage row.
extension ClientConnectionHandler {
    /// Performs `action`; actions that lead to another event (a route, a report) feed it at once.
    func perform(_ action: RequestStateMachine.Action, context: ChannelHandlerContext) {
        // The one place a usage row leaves, before the answer's end is written: the row is then in the
        // kernel's hands (socket or spool) before the client sees the end.
        if let outcome = action.outcome { finish(outcome, answered: action.endsWithAnswer, context: context) }
        switch action {
        case .none:
            break
        case .sendContinue:
            let version = request.request.head.version
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .continue))), promise: nil)
            flushUnlessUsagePending(context: context)
        case .countRefused(let reason):
            worker.refused.refused(
                reason, client: context.remoteAddress, method: request.request.draft.method,
                path: Substring(request.request.draft.path))
        case .answerJSON(let json):
            let keepAlive = request.request.keepAlive
            let text = json ?? worker.healthAnswer
            var headers = HTTPHeaders([
                ("content-type", "application/json"), ("content-length", String(text.utf8.count)),
            ])
            if !keepAlive { headers.add(name: "connection", value: "close") }
            respond(
                HTTPResponseHead(version: .http1_1, status: .ok, headers: headers),
                body: context.channel.allocator.buffer(string: text), keepAlive: keepAlive, context: context)
        case .answerError(let answer, let close, _):
            writeError(answer, close: close, context: context)
        case .refuseBusy(let answer, _):
            refuseBusy(answer, context: context)
        case .close:
            endRequest(keepAlive: false)
            context.close(promise: nil)
        case .checkTokenLimits(let limits, let model):
            checkTokenLimits(limits, model: model, context: context)
        case .route:
            guard serving else { return }
            // Read in place: a copy of the machine would make its next change copy its buffers.
            let route = worker.health.route(
                request.snapshot.routing, model: request.request.draft.model, excluding: request.tried,
                now: WallClock.nowMs())
            feed { $0.routed(route) }
        case .lookUpObjects(let ids):
            lookUpObjects(ids, context: context)
        case .routePinned(let keyID):
            guard serving else { return }
            let route = worker.health.pinnedRoute(request.snapshot.routing, keyID: keyID, now: WallClock.nowMs())
            feed { $0.pinnedRouted(route) }
        case .readObjectRecords(let query, let cursorID):
            readObjectRecords(query, cursorID: cursorID, context: context)
        case .fetchListedObjects(let records):
            fetchListedObjects(records, context: context)
        case .answerList(let body, _):
            answerList(body, context: context)
        case .pick(let candidates):
            pick(from: candidates, context: context)
        case .connect(let key, let fresh):
            connect(key, fresh: fresh, context: context)
        case .send(let key):
            send(key, context: context)
        case .reportKeyFailure(let key, let outcome):
            reportKeyFailure(key, outcome)
        case .forwardHead(let head):
            forwardHead(head, context: context)
        case .forwardBody(let bytes):
            context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
        case .passOn(let held, let keySucceeded, _):
            passOn(held, keySucceeded: keySucceeded, context: context)
        case .endAnswer(let tail, _):
            if let tail { context.write(wrapOutboundOut(.body(.byteBuffer(tail))), promise: nil) }
            let keepAlive = request.request.keepAlive
            endRequest(keepAlive: keepAlive)
            writeEnd(keepAlive: keepAlive, context: context)
        case .cutAnswer(let key, let reason, let event, _):
            cutAnswer(key: key, reason: reason, event: event, context: context)
        case .abandon:
            dropUpstream()
            cancelListFetches()
            endRequest(keepAlive: false)
        case .upgrade(let head):
            upgradeToWebSocket(head, context: context)
        }
    }

    /// Sends the finished request's usage row. When an answer's end follows (`answered`), the row leaves with
    /// the others of this event-loop tick and the usage sender flushes the client's channel right after it,
    /// so `writeEnd` only writes the end.
    private func finish(_ outcome: RequestOutcome, answered: Bool, context: ChannelHandlerContext) {
        guard serving else { return }
        if let call = request.request.objectCall, (200..<300).contains(outcome.status) {
            worker.learn(call, from: request.request.draft)
        }
        if worker.record(&request.request.draft, outcome, now: .now, flushing: answered ? context.channel : nil) {
            usageFlushPending = true
        }
    }

    /// The request is over: its body's share of the worker's budget is given back, and the connection
    /// closes after this answer unless it is kept alive.
    func endRequest(keepAlive: Bool) {
        if serving {
            serving = false
            if request.request.heldBytes > 0 { limits.bodyBudget.release(request.request.heldBytes) }
            request.dropBuffers()
        }
        firstByteDue = nil
        if !keepAlive {
            closing = true
            firstByteTimer?.cancel()
            firstByteTimer = nil
        } else if !closing {
            awaitNextRequest()
        }
    }

    /// Drops the upstream connection of an attempt cut short: it cannot be reused, and closing it cancels
    /// the upstream's work at once.
    func dropUpstream() {
        firstByteDue = nil
        guard let connection = upstream else { return }
        upstream = nil
        connection.delegate = nil
        connection.channel.close(promise: nil)
    }

    // MARK: - Answers made here

    /// Writes an error answer made by the proxy.
    func writeError(_ answer: RequestStateMachine.ErrorAnswer, close: Bool, context: ChannelHandlerContext) {
        let text = answer.body.json
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(text.utf8.count))])
        if answer.status == .unauthorized { headers.add(name: "www-authenticate", value: "Bearer") }
        if let retryAfter = answer.retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
        if close { headers.add(name: "connection", value: "close") }
        respond(
            HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers),
            body: context.channel.allocator.buffer(string: text), keepAlive: !close, context: context)
    }

    /// Writes a whole answer; the request is over before its end goes out (which may bring the next one).
    func respond(_ head: HTTPResponseHead, body: ByteBuffer, keepAlive: Bool, context: ChannelHandlerContext) {
        endRequest(keepAlive: keepAlive)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        writeEnd(keepAlive: keepAlive, context: context)
    }

    /// Ends the answer; the connection closes once it is out if it may not be kept alive or the client
    /// already closed its side.
    func writeEnd(keepAlive: Bool, context: ChannelHandlerContext) {
        readAhead?.answerEnded()
        // A promise only when the close waits for the end: a kept-alive answer (nearly all) makes none.
        guard !keepAlive || inputClosed else {
            context.write(wrapOutboundOut(.end(nil)), promise: nil)
            flushUnlessUsagePending(context: context)
            return
        }
        let written = context.write(wrapOutboundOut(.end(nil)))
        flushUnlessUsagePending(context: context)
        // A client that stops reading would keep the end from going out, and the connection open, for ever: it has
        // the keep-alive timeout to take the answer.
        let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: limits.keepAliveTimeout) { [weak self] in
            self?.context?.close(promise: nil)
        }
        written.assumeIsolated().whenComplete { [weak self] _ in
            deadline.cancel()
            self?.context?.close(promise: nil)
        }
    }

    /// 503 with `Retry-After: 1`: the worker holds as many request bodies as its budget allows. The rest of
    /// this body is read and dropped before the connection closes (within the body timeout): closing with
    /// unread bytes would reset the connection and could take the answer with it.
    private func refuseBusy(_ answer: RequestStateMachine.ErrorAnswer, context: ChannelHandlerContext) {
        let version = request.request.head.version
        if request.request.heldBytes > 0 {
            limits.bodyBudget.release(request.request.heldBytes)
            request.request.heldBytes = 0
        }
        closing = true
        let text = answer.body.json
        let headers = HTTPHeaders([
            ("content-type", "application/json"), ("content-length", String(text.utf8.count)), ("retry-after", "1"),
            ("connection", "close"),
        ])
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: answer.status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        writeEnd(keepAlive: true, context: context)
    }

    // MARK: - Limits and keys

    /// The client token's limits: expiry, allowed models and quota from memory, then the per-minute count
    /// shared by every worker (one database write, only for tokens with such a limit).
    private func checkTokenLimits(
        _ limits: ClientTokenLimits, model: RequestModel, context: ChannelHandlerContext
    ) {
        guard let tokenID = request.request.token?.id else { return }
        let requestID = request.request.draft.requestID
        let now = WallClock.nowMs()
        let decision = ClientTokenPolicy.check(
            // The whole name: the one kept for the usage row is cut to 200 characters.
            limits, model: model.name, modelReadable: !model.isUnreadable,
            tokensUsed: worker.snapshots.tokensUsed(by: tokenID), now: now)
        // A quota also reserves this request's estimate against what the token's requests in flight hold,
        // in the same shared count (one write; the collector drops it when it counts the real usage).
        // A socket reserves nothing: its responses' rows carry ids of their own, and none would drop it.
        let quota =
            request.request.webSocket != nil
            ? nil : limits.tokenQuota.flatMap { limit in worker.quotaReservations.map { (limit, $0) } }
        let rpm = limits.rpmLimit
        // In a known PostgreSQL outage the shared counts cannot be kept: the limits fail open, at once.
        let reachability = worker.reachability
        guard decision == .allow, rpm != nil || quota != nil, reachability?.isUnreachable != true else {
            feed { $0.tokenLimitsChecked(decision) }
            return
        }
        let windows = worker.rateWindows
        let estimate =
            quota == nil
            ? 0
            : QuotaEstimate.tokens(
                requestBytes: request.request.draft.requestBytes,
                completionLimit: QuotaEstimate.completionLimit(in: request.request.body))
        let number = requestNumber
        let count = { @Sendable () async throws -> ClientTokenDecision in
            if case let (limit, reservations)? = quota {
                let reserved = try await reservations.reserve(
                    tokenID: tokenID, requestID: requestID, tokens: estimate, quota: limit, now: now)
                guard reserved == .allow else { return reserved }
            }
            guard let rpm else { return .allow }
            return try await windows.admit(tokenID: tokenID, limit: rpm, now: now)
        }
        context.eventLoop.makeFutureWithTask { () async throws -> ClientTokenDecision in
            guard let reachability else { return try await count() }
            // Bounded: a count the database does not answer in time lets the request through.
            return await reachability.bounded(count) ?? .allow
        }
        .assumeIsolated().whenComplete { [self] result in
            guard number == requestNumber else { return }
            switch result {
            case .success(let decision):
                feed { $0.tokenLimitsChecked(decision) }
            case .failure(let error):
                // The count could not be kept: serve rather than refuse on the proxy's own trouble.
                worker.logger.warning("token limit count failed: \(PostgresErrorText.line(error))")
                feed { $0.tokenLimitsChecked(.allow) }
            }
        }
    }

    /// Looks object ids this worker has not learned up in the database, off the event loop; a failed look
    /// leaves them unknown (the request is routed as one naming ids the gateway never saw).
    private func lookUpObjects(_ ids: [String], context: ChannelHandlerContext) {
        let directory = worker.objects
        let number = requestNumber
        let now = WallClock.nowMs()
        context.eventLoop.makeFutureWithTask { try await directory.lookUp(ids, now: now) }
            .assumeIsolated().whenComplete { [self] result in
                guard number == requestNumber else { return }
                if case .failure(let error) = result {
                    worker.logger.warning("object lookup failed: \(PostgresErrorText.line(error))")
                }
                feed { $0.objectsLookedUp(objects: directory.object) }
            }
    }

    private func pick(from candidates: [RoutableKey], context: ChannelHandlerContext) {
        let selector = request.snapshot.settings.selector
        switch selector.pickWithoutWaiting(from: candidates) {
        case .key(let key):
            feed { $0.keyPicked(key) }
        case .none:
            feed { $0.noKeyPicked() }
        case .needsDatabase:
            let number = requestNumber
            context.eventLoop.makeFutureWithTask { try await selector.pick(from: candidates) }
                .assumeIsolated().whenComplete { [self] result in
                    guard number == requestNumber else { return }
                    switch result {
                    case .success(let key?):
                        feed { $0.keyPicked(key) }
                    case .success(nil):
                        feed { $0.noKeyPicked() }
                    case .failure(let error):
                        worker.logger.error("key selection failed: \(PostgresErrorText.line(error))")
                        feed { $0.keySelectionFailed() }
                    }
                }
        }
    }

    /// Reports a failed attempt's key to key health, and goes on with what the machine makes of it.
    private func reportKeyFailure(_ key: RoutableKey, _ outcome: KeyOutcome) {
        guard serving else { return }
        let marked = worker.health.report(
            outcome, key: key, snapshot: request.snapshot.routing, now: WallClock.nowMs(),
            token: request.request.draft.tokenID)
        if let failure = request.lastFailure {
            var passedOn = false
            if !marked, case .answer = failure { passedOn = true }
            if !passedOn {
                worker.logger.info(
                    "upstream attempt failed",
                    metadata: [
                        "request.id": "\(request.request.draft.requestID)", "key.id": "\(key.id)",
                        "key.hint": "\(key.hint)", "attempt": "\(request.tried.count)",
                        "failure": "\(request.describe(failure))",
                    ])
            }
        }
        feed { $0.keyFailureReported(marked: marked) }
    }
}
