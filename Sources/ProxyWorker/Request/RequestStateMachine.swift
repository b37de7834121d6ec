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
        /// Object ids the worker has not learned yet are being looked up in the database.
        case lookingUpObjects
        /// A list of the token's objects is being gathered from their records and keys.
        case listingObjects
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
        /// Ask key health for the state of the key that holds the request's objects; answer with `pinnedRouted`.
        case routePinned(keyID: Int64)
        /// Look these object ids up in the database (another worker may have recorded them since this worker's
        /// last poll); answer with `objectsLookedUp`.
        case lookUpObjects([String])
        /// Read the token's records for a list (after the record of `cursorID` on the first read); answer with
        /// `objectRecordsRead`.
        case readObjectRecords(ObjectListQuery, cursorID: String?)
        /// Fetch these records' objects from the keys that hold them; answer with `listedObjectsFetched`.
        case fetchListedObjects([StoredObject])
        /// Answer with a list gathered here (200, JSON).
        case answerList(ByteBuffer, outcome: RequestOutcome)
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
        /// The upstream accepted the WebSocket handshake with this `101`: the connection becomes a relayed socket.
        case upgrade(HTTPResponseHead)

        /// Whether the action ends with an answer's end written to the client (its flush may wait for the row).
        var endsWithAnswer: Bool {
            switch self {
            case .answerError, .passOn, .endAnswer, .answerList: return true
            default: return false
            }
        }

        /// The outcome of the request when this action finishes it: the one place a usage row is made from.
        var outcome: RequestOutcome? {
            switch self {
            case .answerError(_, _, let outcome): return outcome
            case .refuseBusy(_, let outcome), .passOn(_, _, let outcome), .endAnswer(_, let outcome),
                .answerList(_, let outcome),
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
    var local: LocalAnswer?
    /// The error answer being held.
    var held: HeldAnswer?
    /// The start of an event not yet complete.
    var eventTail: ByteBuffer?
    /// The answer's status, once it started.
    var status = 0
    /// Whether the upstream connection may be reused after the answer.
    var upstreamKeepAlive = false
    /// The upstream's `101` to a WebSocket handshake, until its end arrives.
    var upgradeHead: HTTPResponseHead?
    /// What dispatching goes on with once the objects the request names were looked up.
    var afterObjectLookup: (model: RequestModel, keepsTexts: Bool, segments: [Substring]?, bodyIDs: [String])?
    /// The list of the token's objects the request asks for, while it is gathered.
    var listing: ObjectListGathering?

    /// A request that began with `request`'s head, under `snapshot`.
    init(request: InFlightRequest, snapshot: RequestSnapshot, upstreamHost: String) {
        self.request = request
        self.snapshot = snapshot
        self.upstreamHost = upstreamHost
    }

    /// A machine with no request, in place until the first one (a connection's handler holds one always).
    static func idle(snapshot: RequestSnapshot) -> RequestStateMachine {
        var machine = RequestStateMachine(
            request: InFlightRequest(
                head: HTTPRequestHead(version: .http1_1, method: .GET, uri: ""),
                draft: UsageDraft(requestID: "", started: .now, timestamp: 0, method: "", path: "")),
            snapshot: snapshot, upstreamHost: "")
        machine.state = .finished
        return machine
    }

    /// Lets go of what an ended request holds in memory (its body, a held answer, an event's start).
    mutating func dropBuffers() {
        state = .finished
        request.body = ByteBuffer()
        request.draft.sniffer = nil
        request.draft.transcript = nil
        held = nil
        listing = nil
        eventTail = nil
        lastFailure = nil
    }

    /// Whether the answer is an event stream, passed on whole events at a time.
    var eventStream: Bool { request.draft.sniffer?.mode == .eventStream }

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
        case .receiving, .lookingUpObjects, .listingObjects, .checkingLimits, .routing, .connecting, .awaitingHead,
            .holding:
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
