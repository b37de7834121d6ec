import Shared

/// What a request's usage row will say, gathered as the request goes; `WorkerContext.record` makes the row
/// from it when the request finishes. What the row can compute at the end (latency, estimates, the
/// answer's text) is not kept here.
struct UsageDraft {
    let requestID: String
    /// When the request arrived.
    let started: ContinuousClock.Instant
    /// The same moment, on the wall clock.
    let timestamp: Int64
    let method: String
    let path: String
    var tokenID: Int64?
    /// The key of the last attempt.
    var key: RoutableKey?
    var model: String?
    var ttfbMs: Double?
    var sniffer: UsageSniffer?
    /// The answer's text, kept only when the chat history stores texts.
    var transcript: AnswerTranscript?
    /// Size of the request body as the client sent it.
    var requestBytes = 0
    /// Sent by the admin console's chat, which keeps its own history.
    var fromConsole = false
    /// The request's messages, captured when the chat history stores texts.
    var chatRequest: String?

    /// Milliseconds from the request's arrival to `now`.
    func milliseconds(at now: ContinuousClock.Instant) -> Double {
        (now - started).inMilliseconds
    }
}

/// How a request ended, as its usage row says.
struct RequestOutcome: Equatable, Sendable {
    /// The HTTP status the client got (499 when it went away first).
    var status: Int
    /// The error code, nil for an answer passed on as the upstream gave it.
    var error: String?
}
