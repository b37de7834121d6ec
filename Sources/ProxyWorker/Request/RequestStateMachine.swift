import HTTPServing
import NIOCore
import NIOHTTP1
import RequestScanning
import Shared

/// One request's life on a client connection, as pure logic: the handler feeds it what happened (the request's
/// parts, the key picked, the upstream's answer, timers, the client going away) and performs the actions it
/// returns. No channel, no clock (times are passed in): every edge is tested without a socket.
///
/// Every request that leaves a usage row ends in exactly one action that carries a `RequestOutcome`
/// (`Action.outcome`); after it the machine is `finished` and takes no more events. A request refused before
/// a token was known leaves none (`RefusedRequests` counts it).
///
/// The machine lives inline in the handler and is mutated in place: buffers are plain stored properties, never
/// enum payloads, so that appending to one does not copy it.
struct RequestStateMachine {
    /// Where the request is.
    enum State: Equatable {
        /// The body is arriving.
        case receiving
        /// The answer is decided before any upstream is involved; it goes out once the body has been read.
        case answeringLocally
        /// Refused while its body arrived: the rest is read and dropped, then the connection closes.
        case discarding
        /// The client token's per-minute count or quota is being checked.
        case checkingLimits
        /// A key is being chosen.
        case routing
        /// An upstream connection is being acquired for `request.draft.key`.
        case connecting
        /// The request went out; the answer's head has not arrived.
        case awaitingHead
        /// An error answer is read whole before deciding between failover and passing it on.
        case holding
        /// The answer's head went to the client; its body follows as it comes.
        case streaming
        /// Answered, or the client went away: nothing more happens.
        case finished
    }

    /// An answer decided before any upstream is involved.
    enum LocalAnswer: Equatable {
        /// `{"status":"ok",…}`.
        case health
        /// A JSON answer made here (the model list).
        case json(String)
        /// `outcome` nil: refused before a token was known, so no usage row.
        case error(ErrorAnswer, outcome: RequestOutcome?)
    }

    /// An error answer made by the proxy.
    struct ErrorAnswer: Equatable {
        var status: HTTPResponseStatus
        var body: ErrorBody
        var retryAfter: Int? = nil
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

    /// What the handler does next.
    enum Action {
        /// Nothing now.
        case none
        /// Tell a client waiting for `100 Continue` to send its body.
        case sendContinue
        /// Count a request refused before a token was known; its answer goes out at the end of its body.
        case countRefused(RefusalReason)
        /// Answer with a local JSON answer (`nil`: the health answer).
        case answerJSON(String?)
        /// Answer with an error made here; the connection closes after it when `close`.
        case answerError(ErrorAnswer, close: Bool, outcome: RequestOutcome?)
        /// 503, the rest of the body is read and dropped (the connection closes at its end).
        case refuseBusy(ErrorAnswer, outcome: RequestOutcome)
        /// Close the connection.
        case close
        /// Check the client token's limits; answer with `tokenLimitsChecked`.
        case checkTokenLimits(ClientTokenLimits, model: RequestModel)
        /// Ask key health for the keys that may serve the request, none of `tried`; answer with `routed`.
        case route
        /// Pick one of `candidates` with the selector; answer with `keyPicked`, `noKeyPicked` or
        /// `keySelectionFailed`.
        case pick([RoutableKey])
        /// Get an upstream connection for an attempt with `key` (`fresh`: a new one, not from the pool);
        /// answer with `connected` or `upstreamFailed`.
        case connect(RoutableKey, fresh: Bool)
        /// Send the request over the connection and start the first-byte timer.
        case send(RoutableKey)
        /// Report the key's failure to key health; answer with `keyFailureReported`.
        case reportKeyFailure(RoutableKey, KeyOutcome)
        /// The answer is the client's: report the key's success, send the head.
        case forwardHead(HTTPResponseHead)
        /// Send a part of the answer's body.
        case forwardBody(ByteBuffer)
        /// Send a held upstream answer as it came (scrubbed); report the key's success first if `keySucceeded`.
        case passOn(HeldAnswer, keySucceeded: Bool, outcome: RequestOutcome)
        /// Send what is left (`tail`) and end the answer.
        case endAnswer(tail: ByteBuffer?, outcome: RequestOutcome)
        /// The upstream broke off mid-answer: report it against `key`, then end an event stream with `event`
        /// or cut any other answer by closing the connection.
        case cutAnswer(key: RoutableKey?, reason: String, event: ErrorBody?, outcome: RequestOutcome)
        /// The client went away: drop the upstream connection, if any.
        case abandon(outcome: RequestOutcome)

        /// The outcome of the request when this action finishes it: the one place a usage row is made from.
        var outcome: RequestOutcome? {
            switch self {
            case .answerError(_, _, let outcome): return outcome
            case .refuseBusy(_, let outcome), .passOn(_, _, let outcome), .endAnswer(_, let outcome),
                .cutAnswer(_, _, _, let outcome), .abandon(let outcome):
                return outcome
            default: return nil
            }
        }
    }

    var state = State.receiving
    /// What the client sent and what was decided.
    var request: InFlightRequest
    /// The snapshot read when the head arrived, in force to the request's end.
    let snapshot: RequestSnapshot
    /// The upstream's host, for error messages.
    let upstreamHost: String
    /// Keys tried, in order: never the same key twice in one request; one attempt each.
    var tried: [Int64] = []
    /// Whether the one retry on a fresh connection after a stale pooled one was used.
    var usedFreshRetry = false
    /// What the last failed attempt left, for the answer when no attempt is left.
    var lastFailure: AttemptFailure?
    /// The answer decided here, sent at the end of the body.
    private(set) var local: LocalAnswer?
    /// The error answer being held.
    var held: HeldAnswer?
    /// The start of an event not yet complete.
    var eventTail: ByteBuffer?
    /// The answer's status, once it started.
    var status = 0
    /// Whether the upstream connection may be reused after the answer.
    var upstreamKeepAlive = false

    /// A request that began with `request`'s head, under `snapshot`.
    init(request: InFlightRequest, snapshot: RequestSnapshot, upstreamHost: String) {
        self.request = request
        self.snapshot = snapshot
        self.upstreamHost = upstreamHost
    }

    /// Whether the answer is an event stream, passed on whole events at a time.
    var eventStream: Bool { request.draft.sniffer?.mode == .eventStream }

    // MARK: - The request

    /// The head arrived (`path` is its target without the query): decides whether the request is answered
    /// here, refused, or read on. `authenticate` looks a bearer header up among the snapshot's tokens.
    mutating func headReceived(path: Substring, authenticate: (String?) -> TokenEntry?) -> Action {
        let head = request.head
        if path == "/healthz" {
            return answerLocally(.health)
        }
        guard path == "/v1" || path.hasPrefix("/v1/") else {
            local = .error(
                ErrorAnswer(
                    status: .notFound,
                    body: ErrorBody(
                        message: "Unknown path \(head.method.rawValue) \(path).", type: "invalid_request_error",
                        code: "not_found")), outcome: nil)
            state = .answeringLocally
            return .countRefused(.unknownPath)
        }
        // Authentication comes first: nothing else is revealed to an unknown caller.
        let header = head.headers.first(name: "authorization")
        guard let token = authenticate(header) else {
            let message =
                header != nil
                ? "Incorrect or revoked proxy token."
                : "Missing bearer token. Send your proxy token as 'Authorization: Bearer <token>'."
            local = .error(
                ErrorAnswer(
                    status: .unauthorized,
                    body: ErrorBody(message: message, type: "invalid_request_error", code: "invalid_api_key")),
                outcome: nil)
            state = .answeringLocally
            // Counted per minute, not a request-log row each: a flood of them must not fill the database.
            return .countRefused(header != nil ? .invalidToken : .missingToken)
        }
        request.draft.tokenID = token.id
        request.draft.fromConsole = token.isInternal
        request.token = token
        if head.method == .GET, path == "/v1/models", let list = snapshot.routing.modelList {
            // The operator's model list (the models table), in OpenAI's format.
            return answerLocally(.json(list))
        }
        guard let upstreamPath = RequestParsing.upstreamPath(path) else {
            let body = ErrorBody(
                message: "Invalid request path \(path).", type: "invalid_request_error", code: "invalid_path")
            return answerLocally(
                .error(
                    ErrorAnswer(status: .badRequest, body: body),
                    outcome: RequestOutcome(status: 400, error: "invalid_path")
                ))
        }
        request.upstreamPath = upstreamPath
        if let length = head.headers.first(name: "content-length").flatMap(Int.init),
            length > snapshot.settings.maxBodyBytes
        {
            return tooLarge()
        }
        // A client waiting for `100 Continue` before it sends the body (curl does above 1 KiB) is told to go
        // on now that the request is accepted, instead of sending it after a wait of its own.
        if head.version != .http1_0, head.headers.first(name: "expect")?.equalsIgnoringASCIICase("100-continue") == true
        {
            return .sendContinue
        }
        return .none
    }

    private mutating func answerLocally(_ answer: LocalAnswer) -> Action {
        local = answer
        state = .answeringLocally
        return .none
    }

    /// A part of the body arrived. `reserve` takes its bytes from the worker's body budget (false: the
    /// budget is full, nothing taken).
    mutating func bodyReceived(_ chunk: inout ByteBuffer, reserve: (Int) -> Bool) -> Action {
        guard state == .receiving else { return .none }
        let count = chunk.readableBytes
        if request.body.readableBytes + count > snapshot.settings.maxBodyBytes { return tooLarge() }
        guard reserve(count) else {
            state = .discarding
            let body = ErrorBody(
                message:
                    "The proxy holds as many request bodies in memory as it may (OPENAI_PROXY_BUFFERED_BODY_BYTES); retry shortly.",
                type: "server_error", code: "server_busy")
            return .refuseBusy(
                ErrorAnswer(status: .serviceUnavailable, body: body, retryAfter: 1),
                outcome: RequestOutcome(status: 503, error: "server_busy"))
        }
        request.heldBytes += count
        request.body.writeBuffer(&chunk)
        return .none
    }

    /// 413 at once, without reading the rest of the body, and the connection is closed.
    private mutating func tooLarge() -> Action {
        state = .finished
        let body = ErrorBody(
            message:
                "Request body is larger than the limit of \(snapshot.settings.maxBodyBytes) bytes (OPENAI_PROXY_MAX_BODY_BYTES).",
            type: "invalid_request_error", code: "request_too_large")
        return .answerError(
            ErrorAnswer(status: .payloadTooLarge, body: body), close: true,
            outcome: RequestOutcome(status: 413, error: "request_too_large"))
    }

    /// The request's end arrived. `keepsTexts`: the chat history stores the texts of requests.
    mutating func endReceived(keepsTexts: Bool) -> Action {
        switch state {
        case .receiving:
            return dispatch(keepsTexts: keepsTexts)
        case .answeringLocally:
            state = .finished
            switch local {
            case .health: return .answerJSON(nil)
            case .json(let text): return .answerJSON(text)
            case .error(let answer, let outcome):
                return .answerError(answer, close: !request.keepAlive, outcome: outcome)
            case nil: return .close
            }
        case .discarding:
            state = .finished
            return .close
        default:
            return .none
        }
    }

    /// The whole request is here: reads its model, prepares the body, then checks the token's limits or
    /// goes for a key.
    private mutating func dispatch(keepsTexts: Bool) -> Action {
        let model = RequestParsing.model(
            in: request.body, contentType: request.head.headers.first(name: "content-type"))
        switch model {
        case .named(let name):
            request.draft.model = String(name.prefix(200))
        case .unreadable(let reason):
            if let (code, message) = RequestParsing.rejection(reason) {
                return fail(.badRequest, message, code: code, type: "invalid_request_error")
            }
        case .absent:
            break
        }
        request.draft.requestBytes = request.body.readableBytes
        if keepsTexts, !request.draft.fromConsole, ChatHistoryMode.recordsPath(request.draft.path) {
            request.draft.chatRequest = AnswerTranscript.requestText(request.body)
            request.keepsTranscript = true
        }
        if StreamUsage.applies(toUpstreamPath: request.upstreamPath),
            let rewritten = StreamUsage.requestingUsage(request.body)
        {
            request.body = rewritten
            request.strippingUsage = true
        }
        if let limits = request.token?.limits {
            state = .checkingLimits
            return .checkTokenLimits(limits, model: model)
        }
        state = .routing
        return .route
    }

    /// What the client token's limits decided (`.allow` also when the count could not be kept: the proxy
    /// serves rather than refuse on its own trouble).
    mutating func tokenLimitsChecked(_ decision: ClientTokenDecision) -> Action {
        guard state == .checkingLimits else { return .none }
        guard decision == .allow else {
            return fail(
                HTTPResponseStatus(statusCode: decision.status), decision.message, code: decision.code,
                type: decision.type, retryAfter: decision.retryAfterSeconds)
        }
        state = .routing
        return .route
    }

    /// Answers with an error made here; the usage row carries `code`.
    mutating func fail(
        _ status: HTTPResponseStatus, _ message: String, code: String, type: String = "server_error",
        retryAfter: Int? = nil
    ) -> Action {
        state = .finished
        return .answerError(
            ErrorAnswer(
                status: status, body: ErrorBody(message: message, type: type, code: code), retryAfter: retryAfter),
            close: !request.keepAlive, outcome: RequestOutcome(status: Int(status.code), error: code))
    }

    // MARK: - Timers and the client

    /// The client was too slow with its body (`ReceiveDeadline`): 408 and the connection closes. Only a
    /// request that had authenticated leaves a usage row.
    mutating func receiveTimedOut(_ body: ErrorBody) -> Action {
        let outcome = RequestOutcome(status: 408, error: "client_timeout")
        switch state {
        case .receiving:
            state = .finished
            return .answerError(ErrorAnswer(status: .requestTimeout, body: body), close: true, outcome: outcome)
        case .answeringLocally:
            state = .finished
            return .answerError(
                ErrorAnswer(status: .requestTimeout, body: body), close: true,
                outcome: request.token != nil ? outcome : nil)
        case .discarding:
            // A refused body that stopped coming before its end.
            state = .finished
            return .close
        default:
            return .none
        }
    }

    /// The connection closed under the request (`reason`: `client_cancelled`, or `drain_timeout` when the
    /// worker cut it): an answer under way is cut, its usage row says so.
    mutating func clientGone(reason: String) -> Action {
        switch state {
        case .receiving, .checkingLimits, .routing, .connecting, .awaitingHead, .holding:
            state = .finished
            return .abandon(outcome: RequestOutcome(status: 499, error: reason))
        case .streaming:
            state = .finished
            return .abandon(outcome: RequestOutcome(status: status, error: reason))
        case .answeringLocally, .discarding, .finished:
            state = .finished
            return .none
        }
    }
}
