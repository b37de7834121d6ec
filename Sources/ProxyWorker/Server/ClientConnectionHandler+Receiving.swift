import HTTPServing
import NIOCore
import NIOHTTP1
import Shared

/// The receiving side's limits: a client that is slow with its request head or falls silent within its body
/// gets 408 and the connection closes; a body that would take the worker past its body budget gets 503.
extension ClientConnectionHandler {
    /// Notes the end of a read: an incomplete body's silence starts again, and bytes that did not make a
    /// request part on an idle kept-alive connection start the next head's deadline.
    func noteReadComplete(context: ChannelHandlerContext) {
        defer { partInRead = false }
        switch state {
        case .receiving, .answeringLocally:
            receiveDeadline.bodyProgress(at: .now())
        case .idle where !partInRead:
            receiveDeadline.headStarted(at: .now())
        default:
            return
        }
        armReceiveTimer(context: context)
    }

    /// Starts the timer for what is awaited, unless one runs already (it looks again when it fires, so a
    /// deadline moved later needs no new timer).
    func armReceiveTimer(context: ChannelHandlerContext) {
        guard receiveTimer == nil, receiveDeadline.phase != .none else { return }
        receiveTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: receiveDeadline.due) { [self] in
            receiveTimer = nil
            guard let context = self.context else { return }
            switch receiveDeadline.check(at: .now()) {
            case .nothingAwaited:
                break
            case .wait:
                armReceiveTimer(context: context)
            case .expired(let phase):
                receiveTimedOut(phase, context: context)
            }
        }
    }

    /// The client was too slow: 408 and the connection closes. Only a request that had authenticated leaves a
    /// usage row; a head that never completed leaves none.
    private func receiveTimedOut(_ phase: ReceiveDeadline.Phase, context: ChannelHandlerContext) {
        receiveDeadline.requestReceived()
        let body =
            phase == .head
            ? ErrorBody(
                message:
                    "The request head was not complete within \(Self.seconds(limits.headerTimeout)) (OPENAI_PROXY_CLIENT_HEADER_TIMEOUT).",
                type: "invalid_request_error", code: "client_timeout")
            : ErrorBody(
                message:
                    "The request body sent nothing for \(Self.seconds(limits.bodyTimeout)) (OPENAI_PROXY_CLIENT_BODY_TIMEOUT).",
                type: "invalid_request_error", code: "client_timeout")
        switch state {
        case .idle:
            state = .closing
            answerWithoutRequest(.requestTimeout, body, context: context)
        case .receiving(let pending):
            core.report(pending.exchange, status: 408, error: "client_timeout")
            state = .closing
            writeError(.requestTimeout, body, close: true, context: context)
        case .answeringLocally(let pending, _):
            if pending.token != nil { core.report(pending.exchange, status: 408, error: "client_timeout") }
            state = .closing
            writeError(.requestTimeout, body, close: true, context: context)
        case .closing:
            // A refused body that stopped coming before its end.
            context.close(promise: nil)
        case .waitingForKey, .connecting, .proxying:
            break
        }
    }

    /// 503 with `Retry-After: 1`: the worker holds as many request bodies as its budget allows. The rest of
    /// this body is read and dropped before the connection closes (within the body timeout): closing with
    /// unread bytes would reset the connection and could take the answer with it.
    func rejectBusy(_ pending: Pending, context: ChannelHandlerContext) {
        core.report(pending.exchange, status: 503, error: "server_busy")
        state = .closing
        discardingBody = true
        let text = ErrorBody(
            message:
                "The proxy holds as many request bodies in memory as it may (OPENAI_PROXY_BUFFERED_BODY_BYTES); retry shortly.",
            type: "server_error", code: "server_busy"
        ).json
        let headers = HTTPHeaders([
            ("content-type", "application/json"), ("content-length", String(text.utf8.count)), ("retry-after", "1"),
            ("connection", "close"),
        ])
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: pending.head.version, status: .serviceUnavailable, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        writeEnd(keepAlive: true, context: context)
    }

    /// An error answer on a connection whose request head never completed. NIO's pipelining handler takes an
    /// answer without a request for a broken invariant, so this one goes past it, straight to the response
    /// encoder; the connection closes once it is out.
    private func answerWithoutRequest(_ status: HTTPResponseStatus, _ error: ErrorBody, context: ChannelHandlerContext)
    {
        guard
            let encoderSide = try? context.pipeline.syncOperations.context(handlerType: HTTPServerPipelineHandler.self)
        else {
            context.close(promise: nil)
            return
        }
        let text = error.json
        let headers = HTTPHeaders([
            ("content-type", "application/json"), ("content-length", String(text.utf8.count)), ("connection", "close"),
        ])
        encoderSide.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        encoderSide.write(
            wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        encoderSide.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [weak self] _ in
            self?.context?.close(promise: nil)
        }
    }

    /// `60 s`, `1.5 s`: a timeout as people read it.
    private static func seconds(_ amount: TimeAmount) -> String {
        let milliseconds = amount.nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }
}

extension ClientConnectionHandler.Pending {
    /// Takes `bytes` more of the worker's `budget` for this request's body (given back when the request ends);
    /// false, and nothing taken, when the worker already holds its fill.
    func hold(_ bytes: Int, of budget: BodyBudget) -> Bool {
        guard budget.reserve(bytes) else { return false }
        if self.budget == nil { self.budget = budget }
        heldBytes += bytes
        return true
    }
}
