import NIOCore

/// When the request a connection is receiving has to make progress by. The head must be complete within the
/// header timeout of its start (accept, or the first byte after the previous answer), however its bytes
/// trickle in; the body may not fall silent for longer than the body timeout. Nothing is awaited between a
/// complete request and the first byte of the next one (the keep-alive idle timeout governs that).
struct ReceiveDeadline {
    /// What is awaited from the client.
    enum Phase: Equatable {
        /// Nothing: a request is being answered, or a kept-alive connection is idle.
        case none
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
    private(set) var phase = Phase.none
    /// When the awaited phase is late, if still awaited.
    private(set) var due = NIODeadline.distantFuture

    /// Deadlines of these lengths, nothing awaited yet.
    init(headerTimeout: TimeAmount, bodyTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// A request head has begun (the connection was accepted, or bytes of the next request arrived): it is due
    /// a header timeout from now. A head already awaited keeps its deadline, so trickled bytes cannot extend it.
    mutating func headStarted(at now: NIODeadline) {
        guard phase == .none else { return }
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

    /// What is late at `now`, or when to look again.
    func check(at now: NIODeadline) -> Check {
        guard phase != .none else { return .nothingAwaited }
        return now >= due ? .expired(phase) : .wait(until: due)
    }
}
