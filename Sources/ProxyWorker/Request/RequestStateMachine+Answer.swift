import HTTPServing
import NIOCore
import NIOHTTP1
import Shared

/// The answer side: parts from the upstream go to the client as they arrive. An error answer is held until
/// its end instead, so that another key can still be tried when it may be the key's. An event stream is passed
/// on whole events at a time, so a stream that breaks never leaves the client half an event.
extension RequestStateMachine {
    /// The most of a held error answer kept; error bodies are a few hundred bytes.
    static let heldAnswerLimit = 64 << 10

    /// The answer's head arrived at `now`; `transcriptLimit` cuts the kept answer text when one is kept.
    mutating func upstreamHeadReceived(
        _ head: HTTPResponseHead, now: ContinuousClock.Instant, transcriptLimit: Int
    ) -> Action {
        if head.status == .switchingProtocols, state == .awaitingHead, request.webSocket != nil {
            upgradeHead = head
            return .none
        }
        // Informational answers (100 Continue, 103 Early Hints) are not the answer.
        guard state == .awaitingHead, head.status.code >= 200 else { return .none }
        upstreamKeepAlive = head.isKeepAlive
        if head.status.code >= 400 {
            state = .holding
            held = HeldAnswer(head: head, body: ByteBuffer())
            return .none
        }
        state = .streaming
        status = Int(head.status.code)
        request.draft.ttfbMs = request.draft.milliseconds(at: now)
        let sniffer = UsageSniffer(
            headers: head.headers, reads: request.readsUsage, readsObject: request.objectCall == .create)
        if request.keepsTranscript {
            request.draft.transcript = AnswerTranscript(
                eventStream: sniffer.mode == .eventStream, limit: transcriptLimit)
        }
        request.draft.sniffer = sniffer
        return .forwardHead(head)
    }

    /// A part of the answer's body arrived.
    mutating func upstreamBodyReceived(_ chunk: inout ByteBuffer) -> Action {
        switch state {
        case .holding:
            if let kept = held?.body.readableBytes, kept + chunk.readableBytes <= Self.heldAnswerLimit {
                held?.body.writeBuffer(&chunk)
            } else {
                held?.overflowed = true
            }
            return .none
        case .streaming:
            request.draft.sniffer?.consume(chunk)
            request.draft.transcript?.consume(chunk)
            return eventStream ? wholeEvents(chunk) : .forwardBody(chunk)
        default:
            return .none
        }
    }

    /// The complete events of an event stream; an event cut across parts waits for its end.
    private mutating func wholeEvents(_ chunk: ByteBuffer) -> Action {
        var bytes = chunk
        if eventTail != nil {
            eventTail!.writeImmutableBuffer(chunk)
            bytes = eventTail.take()!
        }
        let complete = bytes.withUnsafeReadableBytes { EventStreamFraming.completeLength($0) }
        if complete < bytes.readableBytes {
            eventTail = bytes.getSlice(at: bytes.readerIndex + complete, length: bytes.readableBytes - complete)
        }
        guard complete > 0, var events = bytes.getSlice(at: bytes.readerIndex, length: complete) else { return .none }
        if request.strippingUsage {
            events = StreamUsage.withoutUsageEvents(events)
            if events.readableBytes == 0 { return .none }
        }
        return .forwardBody(events)
    }

    /// The answer ended at `now` (the handler gave the upstream connection back first).
    mutating func upstreamEndReceived(now: ContinuousClock.Instant) -> Action {
        switch state {
        case .holding:
            guard let held = held.take() else { return .none }
            return heldAnswerEnded(held, now: now)
        case .streaming:
            state = .finished
            request.draft.sniffer?.answerEnded()
            return .endAnswer(tail: eventTail.take(), outcome: RequestOutcome(status: status, error: nil))
        case .awaitingHead:
            guard let head = upgradeHead.take() else { return .none }
            // The socket's responses leave a usage row each (`WebSocketRelay`); the handshake leaves none.
            state = .finished
            request.draft.ttfbMs = request.draft.milliseconds(at: now)
            return .upgrade(head)
        default:
            return .none
        }
    }

    /// A held error answer ended: the key failed, so the request moves on to another key; or the error is not
    /// the key's (the request's own, a region block), and the client gets it as it came.
    private mutating func heldAnswerEnded(_ held: HeldAnswer, now: ContinuousClock.Instant) -> Action {
        let status = Int(held.head.status.code)
        guard UpstreamVerdict.mayBeKeyFailure(status: status) else {
            // 400, 404, 422 …: the key served the request (its few bytes came at once: the end is the first byte).
            request.draft.ttfbMs = request.draft.milliseconds(at: now)
            return passOn(held, keySucceeded: true)
        }
        let outcome = UpstreamVerdict.outcome(
            status: status, body: Array(buffer: held.body), header: { held.head.headers.first(name: $0) })
        if outcome == .success { return passOn(held, keySucceeded: false) }
        return attemptFailed(.answer(held), outcome: outcome)
    }

    /// The upstream connection failed (`reused`: it had served an answer before). Before the answer started
    /// this is the attempt's failure; after, the answer is cut: an event stream ends with an error event after
    /// its last whole event, other answers are cut off.
    mutating func upstreamFailed(_ error: UpstreamError, reused: Bool) -> Action {
        guard state == .streaming else { return upstreamFailedBeforeAnswer(error, reused: reused) }
        state = .finished
        let reason = error == .readTimeout ? "upstream_timeout" : "upstream_stream_error"
        var event: ErrorBody?
        if eventStream {
            eventTail = nil
            let message =
                error == .readTimeout
                ? "The upstream stopped sending in the middle of the answer."
                : "The upstream connection broke off in the middle of the answer."
            event = ErrorBody(message: message, type: "server_error", code: reason)
        }
        return .cutAnswer(
            key: request.draft.key, reason: reason, event: event, outcome: RequestOutcome(status: status, error: reason)
        )
    }
}

extension Optional {
    /// The value, leaving nil behind (so that a buffer taken out is not shared with a copy left in place).
    fileprivate mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}
