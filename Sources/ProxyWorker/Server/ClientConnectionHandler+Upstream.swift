import HTTPServing
import NIOCore
import NIOHTTP1
import Shared

/// The answer side of a proxied request: parts from the upstream connection go to the client as they
/// arrive, flushed at the end of each upstream read. An error answer is held until its end instead, so
/// that another key can still be tried when it may be the key's, and so that what it says of the pool's
/// keys is scrubbed before the client sees it.
extension ClientConnectionHandler: UpstreamDelegate {
    func upstream(_ connection: UpstreamConnection, received part: HTTPClientResponsePart) {
        guard case .proxying(let pending, let current) = state, current === connection, let context else { return }
        switch part {
        case .head(let head):
            // Informational answers (100 Continue, 103 Early Hints) are not the answer.
            if head.status.code >= 100 && head.status.code < 200 { return }
            pending.firstByteDeadline?.cancel()
            connection.awaitingHead = false
            pending.upstreamKeepAlive = head.isKeepAlive
            let status = Int(head.status.code)
            if let key = pending.exchange.key,
                let figures = RateLimitHeaders.state(now: WallClock.nowMs(), header: { head.headers.first(name: $0) })
            {
                core.health.observe(figures, keyID: key.id)
            }
            if status >= 400 {
                pending.heldAnswer = HeldAnswer(head: head, body: context.channel.allocator.buffer(capacity: 0))
                return
            }
            answerStarted(pending, head: head, context: context)
        case .body(var chunk):
            if var held = pending.heldAnswer {
                pending.heldAnswer = nil
                if held.body.readableBytes + chunk.readableBytes <= Self.heldAnswerLimit {
                    held.body.writeBuffer(&chunk)
                } else {
                    held.overflowed = true
                }
                pending.heldAnswer = held
                return
            }
            pending.exchange.sniffer?.consume(chunk)
            pending.exchange.transcript?.consume(chunk)
            if pending.eventStream {
                forwardWholeEvents(pending, chunk, context: context)
            } else {
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            }
        case .end:
            connection.delegate = nil
            let pool = core.pools.pool(for: context.eventLoop)
            if pending.upstreamKeepAlive { pool.release(connection) } else { connection.channel.close(promise: nil) }
            if let held = pending.heldAnswer {
                pending.heldAnswer = nil
                answerHeld(pending, held, context: context)
                return
            }
            if let tail = pending.eventTail {
                pending.eventTail = nil
                context.write(wrapOutboundOut(.body(.byteBuffer(tail))), promise: nil)
            }
            let flushedByUsage = core.report(
                pending.exchange, status: pending.status, error: nil, flushing: context.channel)
            state = pending.keepAlive ? .idle : .closing
            writeEnd(keepAlive: pending.keepAlive, flushedByUsage: flushedByUsage, context: context)
        }
    }

    /// Names the key that served an answer to the admin console's own token (and to no one else).
    static func addServedKey(_ pending: Pending, to headers: inout HTTPHeaders) {
        guard pending.exchange.fromConsole, let key = pending.exchange.key else { return }
        headers.add(name: ClientToken.servedKeyHeader, value: String(key.id))
    }

    /// The most of a held error answer kept; error bodies are a few hundred bytes.
    static let heldAnswerLimit = 64 << 10

    /// The answer is the client's: its head goes out now, its body as it comes.
    private func answerStarted(_ pending: Pending, head: HTTPResponseHead, context: ChannelHandlerContext) {
        pending.responseStarted = true
        pending.status = Int(head.status.code)
        pending.exchange.ttfbMs = pending.exchange.milliseconds()
        let contentType = head.headers.first(name: "content-type")
        pending.exchange.sniffer = UsageSniffer(contentType: contentType)
        pending.eventStream = contentType?.hasPrefixIgnoringASCIICase("text/event-stream") ?? false
        if pending.keepsTranscript {
            pending.exchange.transcript = AnswerTranscript(
                eventStream: pending.eventStream, limit: core.chatHistoryMaxBytes)
        }
        if let key = pending.exchange.key {
            core.health.report(.success, key: key, snapshot: core.snapshots.snapshot, now: WallClock.nowMs())
        }
        var headers = ForwardedHeaders.downstream(from: head.headers)
        Self.addServedKey(pending, to: &headers)
        if !pending.keepAlive { headers.add(name: "connection", value: "close") }
        // Answer in the client's HTTP version: an HTTP/1.0 client gets no chunked encoding.
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: pending.head.version, status: head.status, headers: headers))),
            promise: nil)
    }

    /// A held error answer ended: the key failed, so the request moves on to another key; or the error is
    /// not the key's (the request's own, a region block), and the client gets it as it came.
    private func answerHeld(_ pending: Pending, _ held: HeldAnswer, context: ChannelHandlerContext) {
        let status = Int(held.head.status.code)
        guard UpstreamVerdict.mayBeKeyFailure(status: status) else {
            // 400, 404, 422 …: the key served the request (its few bytes came at once: the end is the first byte).
            pending.exchange.ttfbMs = pending.exchange.milliseconds()
            if let key = pending.exchange.key {
                core.health.report(.success, key: key, snapshot: core.snapshots.snapshot, now: WallClock.nowMs())
            }
            passOn(held, pending: pending, context: context)
            return
        }
        let outcome = UpstreamVerdict.outcome(
            status: status, body: Array(buffer: held.body), header: { held.head.headers.first(name: $0) })
        if outcome == .success {
            passOn(held, pending: pending, context: context)
        } else {
            attemptFailed(pending, .answer(held), outcome: outcome, context: context)
        }
    }

    /// Passes on the complete events of an event stream; an event cut across reads waits for its end, so
    /// a stream that breaks never leaves the client half an event.
    private func forwardWholeEvents(_ pending: Pending, _ chunk: ByteBuffer, context: ChannelHandlerContext) {
        var bytes = chunk
        if var tail = pending.eventTail {
            pending.eventTail = nil
            tail.writeImmutableBuffer(chunk)
            bytes = tail
        }
        let complete = bytes.withUnsafeReadableBytes { EventStreamFraming.completeLength($0) }
        if complete < bytes.readableBytes {
            pending.eventTail = bytes.getSlice(at: bytes.readerIndex + complete, length: bytes.readableBytes - complete)
        }
        guard complete > 0, var events = bytes.getSlice(at: bytes.readerIndex, length: complete) else { return }
        if pending.strippingUsage {
            events = StreamUsage.withoutUsageEvents(events)
            if events.readableBytes == 0 { return }
        }
        context.write(wrapOutboundOut(.body(.byteBuffer(events))), promise: nil)
    }

    func upstreamReadComplete(_ connection: UpstreamConnection) {
        guard case .proxying(_, let current) = state, current === connection else { return }
        context?.flush()
    }

    func upstream(_ connection: UpstreamConnection, failed error: UpstreamError) {
        guard case .proxying(let pending, let current) = state, current === connection, let context else { return }
        guard pending.responseStarted else {
            pending.heldAnswer = nil
            upstreamFailedBeforeAnswer(pending, error, reused: connection.servedBefore, context: context)
            return
        }
        // Part of the answer went out already: no retry. An event stream ends with an error event after
        // its last whole event; other answers are cut, marked by the closed connection.
        let reason = error == .readTimeout ? "upstream_timeout" : "upstream_stream_error"
        core.logger.info(
            "upstream answer ended early",
            metadata: ["reason": "\(reason)", "key.hint": "\(pending.exchange.key?.hint ?? "-")"])
        if let key = pending.exchange.key {
            core.health.report(
                .transient(status: nil, reason: "answer cut: \(reason)"), key: key, snapshot: core.snapshots.snapshot,
                now: WallClock.nowMs())
        }
        core.report(pending.exchange, status: pending.status, error: reason)
        state = .closing
        if pending.eventStream {
            pending.eventTail = nil
            let message =
                error == .readTimeout
                ? "The upstream stopped sending in the middle of the answer."
                : "The upstream connection broke off in the middle of the answer."
            let event = "data: " + ErrorBody(message: message, type: "server_error", code: reason).json + "\n\n"
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: event)))), promise: nil)
            writeEnd(keepAlive: false, context: context)
        } else {
            context.flush()
            context.close(promise: nil)
        }
    }
}

/// Where events end in an event stream (`text/event-stream`): an event ends at an empty line.
enum EventStreamFraming {
    /// Whether the newline at `index` ends an event: it closes an empty line (`\n\n` or `\n\r\n`).
    static func endsEvent(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Bool {
        guard index > 0, bytes[index] == UInt8(ascii: "\n") else { return false }
        let previous = bytes[index - 1]
        if previous == UInt8(ascii: "\n") { return true }
        return previous == UInt8(ascii: "\r") && index >= 2 && bytes[index - 2] == UInt8(ascii: "\n")
    }

    /// The length of the part of `bytes` made of whole events (up to and including the last empty line).
    static func completeLength(_ bytes: UnsafeRawBufferPointer) -> Int {
        var index = bytes.count - 1
        while index > 0 {
            if endsEvent(bytes, at: index) { return index + 1 }
            index -= 1
        }
        return 0
    }
}
