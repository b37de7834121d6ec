import NIOCore

/// When the request a connection is receiving has to make progress by. The head must be complete within the
/// header timeout of its start (accept, or the first byte after the previous answer), however its bytes
/// trickle in; the body may not fall silent for longer than the body timeout. Once an answer has ended, a
/// kept-alive connection waits for the next request's first byte at most the keep-alive timeout.
struct ReceiveDeadline {
    /// What is awaited from the client.
    enum Phase: Equatable {
        /// Nothing: a request is being answered.
        case none
        /// The next request's first byte, on a kept-alive connection whose last answer has ended.
        case idle
        /// The rest of a request head.
        case head
        /// More of a request body (or its end).
        case body
    }

    /// What a check at some moment finds.
    enum Check: Equatable {
        /// Nothing is awaited; no timer is needed.
        case nothingAwaited
        /// Not late: check again at this moment.
        case wait(until: NIODeadline)
        /// Late: the client took too long with this phase.
        case expired(Phase)
    }

    let headerTimeout: TimeAmount
    let bodyTimeout: TimeAmount
    let keepAliveTimeout: TimeAmount
    private(set) var phase = Phase.none
    /// When the awaited phase is late, if still awaited.
    private(set) var due = NIODeadline.distantFuture

    /// Deadlines of these lengths, nothing awaited yet.
    init(headerTimeout: TimeAmount, bodyTimeout: TimeAmount, keepAliveTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.keepAliveTimeout = keepAliveTimeout
    }

    /// A request head has begun (the connection was accepted, or bytes of the next request arrived): it is due
    /// a header timeout from now. A head already awaited keeps its deadline, so trickled bytes cannot extend it.
    mutating func headStarted(at now: NIODeadline) {
        guard phase == .none || phase == .idle else { return }
        phase = .head
        due = now + headerTimeout
    }

    /// The head is complete; its body, if any, is awaited from the next read on (`bodyProgress`).
    mutating func headReceived() {
        phase = .body
    }

    /// A read brought (or ended with) body bytes: the body may stay silent a body timeout from now.
    mutating func bodyProgress(at now: NIODeadline) {
        guard phase == .body else { return }
        due = now + bodyTimeout
    }

    /// The request is complete: nothing is awaited until the next one begins.
    mutating func requestReceived() {
        phase = .none
        due = .distantFuture
    }

    /// The answer has ended and the connection is kept alive: the next request's first byte is due a keep-alive
    /// timeout from now. A request still being received keeps its own deadline (an answer sent before its body
    /// ended); the idle wait then starts when the request is complete.
    mutating func answerEnded(at now: NIODeadline) {
        guard phase == .none else { return }
        phase = .idle
        due = now + keepAliveTimeout
    }

    /// What is late at `now`, or when to look again.
    func check(at now: NIODeadline) -> Check {
        guard phase != .none else { return .nothingAwaited }
        return now >= due ? .expired(phase) : .wait(until: due)
    }
}
