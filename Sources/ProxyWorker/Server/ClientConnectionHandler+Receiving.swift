import HTTPServing
import NIOCore
import NIOHTTP1
import Shared

/// The receiving side's deadlines: a client that is slow with its request head or falls silent within its
/// body gets 408 and the connection closes; a kept-alive connection that stays silent after its answer is closed.
extension ClientConnectionHandler {
    /// Notes the end of a read: an incomplete body's silence starts again, and bytes that did not make a
    /// request part on an idle kept-alive connection start the next head's deadline.
    func noteReadComplete(context: ChannelHandlerContext) {
        defer { partInRead = false }
        if serving, request.state == .receiving || request.state == .answeringLocally {
            receiveDeadline.bodyProgress(at: context.eventLoop.now)
        } else if isIdle, !partInRead {
            receiveDeadline.headStarted(at: context.eventLoop.now)
        } else {
            return
        }
        armReceiveTimer(context: context)
    }

    /// Starts the timer for what is awaited, unless one runs already that fires no later: it looks again when it
    /// fires, so a deadline moved later (every answer's end moves the idle one) needs no new timer, and a
    /// kept-alive connection has one timer for all its requests.
    func armReceiveTimer(context: ChannelHandlerContext) {
        guard receiveDeadline.phase != .none else { return }
        let due = receiveDeadline.due
        if receiveTimer != nil {
            if receiveTimerAt <= due { return }
            receiveTimer?.cancel()
        }
        receiveTimerAt = due
        receiveTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { [self] in
            receiveTimer = nil
            guard let context = self.context else { return }
            switch receiveDeadline.check(at: context.eventLoop.now) {
            case .nothingAwaited:
                break
            case .wait:
                armReceiveTimer(context: context)
            case .expired(.idle):
                // Silent since its last answer: closed. (A request in progress never leaves the phase `.idle`.)
                if isIdle { context.close(promise: nil) }
            case .expired(let phase):
                receiveTimedOut(phase, context: context)
            }
        }
    }

    /// The answer has ended on a connection kept alive: the next request's first byte is awaited, within the
    /// keep-alive timeout.
    func awaitNextRequest() {
        guard let context else { return }
        receiveDeadline.answerEnded(at: context.eventLoop.now)
        armReceiveTimer(context: context)
    }

    /// The client was too slow: 408 and the connection closes. Only a request that had authenticated leaves a
    /// usage row (the machine decides); a head that never completed leaves none.
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
        if serving {
            feed { $0.receiveTimedOut(body) }
        } else if closing {
            context.close(promise: nil)
        } else {
            closing = true
            answerWithoutRequest(.requestTimeout, body, context: context)
        }
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
