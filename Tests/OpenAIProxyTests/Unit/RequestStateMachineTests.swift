import HTTPServing
import NIOCore
import NIOHTTP1
import RequestScanning
import Testing

@testable import ProxyWorker
@testable import Shared

/// The request state machine without a socket: events in, actions out.
@Suite("Request state machine")
struct RequestStateMachineTests {
    typealias Machine = RequestStateMachine

    static let keys = (1...4).map { RoutableKey(id: Int64($0), hint: "k\($0)", value: "sk-test-\($0)") }
    static let token = TokenEntry(id: 9, limits: nil)

    let database: TestDatabase

    init() throws {
        database = try TestDatabase()
    }

    /// A machine for a request of `uri`, after its head.
    func machine(
        _ method: HTTPMethod = .POST, _ uri: String = "/v1/chat/completions", headers: [(String, String)] = [],
        bearer: Bool = true, maxAttempts: Int = 3, maxBodyBytes: Int = 1 << 20, token: TokenEntry? = token
    ) -> (Machine, Machine.Action) {
        var all = HTTPHeaders(headers)
        if bearer { all.add(name: "authorization", value: "Bearer t") }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: all)
        let path = uri.split(separator: "?", maxSplits: 1).first ?? ""
        let settings = RequestSettings(
            maxBodyBytes: maxBodyBytes, firstByteTimeout: .seconds(5), connectTimeout: nil,
            selector: KeySelector(strategy: .roundRobin, database: database.database), maxAttempts: maxAttempts)
        let draft = UsageDraft(
            requestID: "r1", started: .now, timestamp: 0, method: method.rawValue, path: String(path))
        var request = InFlightRequest(head: head, draft: draft)
        request.query = uri.split(separator: "?", maxSplits: 1).dropFirst().first
        var machine = Machine(
            request: request, snapshot: RequestSnapshot(routing: .empty, settings: settings),
            upstreamHost: "upstream.test")
        let action = machine.headReceived(path: path, authenticate: { $0 == nil ? nil : token })
        return (machine, action)
    }

    /// A machine whose request went out on `keys[0]` and awaits the answer's head.
    func sent(maxAttempts: Int = 3, body: String = #"{"model":"gpt-x"}"#) -> Machine {
        var (machine, _) = machine(maxAttempts: maxAttempts)
        var chunk = ByteBuffer(string: body)
        _ = machine.bodyReceived(&chunk, reserve: { _ in true })
        #expect(label(machine.endReceived(keepsTexts: false)) == "route")
        #expect(label(machine.routed(.candidates(Self.keys))) == "pick")
        #expect(label(machine.keyPicked(Self.keys[0])) == "connect(1)")
        #expect(label(machine.connected()) == "send(1)")
        return machine
    }

    @Test("a failed key is reported and the next key is tried; the answer then streams to its end")
    func failover() {
        var machine = sent()
        #expect(label(machine.upstreamFailed(.connectFailed("refused"), reused: false)) == "reportKeyFailure(1)")
        #expect(label(machine.keyFailureReported(marked: true)) == "route")
        #expect(label(machine.routed(.candidates(Array(Self.keys.dropFirst())))) == "pick")
        #expect(label(machine.keyPicked(Self.keys[1])) == "connect(2)")
        #expect(label(machine.connected()) == "send(2)")
        #expect(
            label(machine.upstreamHeadReceived(Self.head(200), now: .now, transcriptLimit: 0)) == "forwardHead(200)")
        var part = ByteBuffer(string: "{}")
        #expect(label(machine.upstreamBodyReceived(&part)) == "forwardBody({})")
        let end = machine.upstreamEndReceived(now: .now)
        #expect(label(end) == "endAnswer")
        #expect(end.outcome == RequestOutcome(status: 200, error: nil))
        #expect(machine.tried == [1, 2])
        #expect(machine.request.draft.key?.id == 2)
        #expect(machine.state == .finished)
    }

    @Test("no more attempts than the limit: the last failure is the answer")
    func attemptsLimit() {
        var machine = sent(maxAttempts: 2)
        _ = machine.upstreamFailed(.connectFailed("refused"), reused: false)
        _ = machine.keyFailureReported(marked: true)
        _ = machine.routed(.candidates(Self.keys))
        _ = machine.keyPicked(Self.keys[1])
        _ = machine.connected()
        #expect(label(machine.firstByteTimedOut()) == "reportKeyFailure(2)")
        #expect(label(machine.keyFailureReported(marked: true)) == "route")
        let answer = machine.routed(.candidates(Self.keys))
        #expect(label(answer) == "answerError(504)")
        #expect(answer.outcome == RequestOutcome(status: 504, error: "upstream_timeout"))
        #expect(machine.tried.count == 2)
    }

    @Test("a held error answer that is the key's fault moves on to the next key")
    func heldKeyFailure() {
        var machine = sent()
        #expect(label(machine.upstreamHeadReceived(Self.head(429), now: .now, transcriptLimit: 0)) == "none")
        var part = ByteBuffer(string: #"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#)
        #expect(label(machine.upstreamBodyReceived(&part)) == "none")
        #expect(label(machine.upstreamEndReceived(now: .now)) == "reportKeyFailure(1)")
        #expect(label(machine.keyFailureReported(marked: true)) == "route")
        // No key left to try: the client gets the held answer as it came.
        let answer = machine.routed(.exhausted)
        #expect(label(answer) == "passOn(429)")
        #expect(answer.outcome == RequestOutcome(status: 429, error: nil))
    }

    @Test("a held error answer that is the request's own is passed on, and the key counts as a success")
    func heldRequestFailure() {
        var machine = sent()
        _ = machine.upstreamHeadReceived(Self.head(400), now: .now, transcriptLimit: 0)
        var part = ByteBuffer(string: #"{"error":{"message":"bad"}}"#)
        _ = machine.upstreamBodyReceived(&part)
        let answer = machine.upstreamEndReceived(now: .now)
        guard case .passOn(let held, let keySucceeded, let outcome) = answer else {
            Issue.record("expected passOn, got \(label(answer))")
            return
        }
        #expect(keySucceeded)
        #expect(String(buffer: held.body) == #"{"error":{"message":"bad"}}"#)
        #expect(outcome == RequestOutcome(status: 400, error: nil))
        #expect(machine.request.draft.ttfbMs != nil)
    }

    @Test("a refusal key health will not mark is taken as the request's: passed on, no other key")
    func unmarkedRefusal() {
        var machine = sent()
        _ = machine.upstreamHeadReceived(Self.head(401), now: .now, transcriptLimit: 0)
        #expect(label(machine.upstreamEndReceived(now: .now)) == "reportKeyFailure(1)")
        #expect(label(machine.keyFailureReported(marked: false)) == "passOn(401)")
    }

    @Test("a held answer keeps at most 64 KiB and notes the overflow")
    func heldAnswerLimit() {
        var machine = sent()
        _ = machine.upstreamHeadReceived(Self.head(500), now: .now, transcriptLimit: 0)
        var big = ByteBuffer(repeating: UInt8(ascii: "x"), count: Machine.heldAnswerLimit)
        _ = machine.upstreamBodyReceived(&big)
        var more = ByteBuffer(string: "y")
        _ = machine.upstreamBodyReceived(&more)
        #expect(machine.held?.body.readableBytes == Machine.heldAnswerLimit)
        #expect(machine.held?.overflowed == true)
    }

    @Test("a pooled connection closed under the request gets one fresh retry on the same key, not an attempt")
    func freshRetry() {
        var machine = sent()
        #expect(label(machine.upstreamFailed(.connectionClosed, reused: true)) == "connect(1,fresh)")
        #expect(label(machine.connected()) == "send(1)")
        #expect(machine.tried == [1])
        #expect(label(machine.upstreamFailed(.connectionClosed, reused: true)) == "reportKeyFailure(1)")
    }

    @Test("an event stream goes out whole events at a time; an event cut across parts waits for its end")
    func eventFraming() {
        var machine = sent()
        _ = machine.upstreamHeadReceived(Self.head(200, eventStream: true), now: .now, transcriptLimit: 0)
        var first = ByteBuffer(string: "data: a\n\ndata: b")
        #expect(label(machine.upstreamBodyReceived(&first)) == "forwardBody(data: a\n\n)")
        var second = ByteBuffer(string: "c\n\ndata: d")
        #expect(label(machine.upstreamBodyReceived(&second)) == "forwardBody(data: bc\n\n)")
        var third = ByteBuffer(string: "e")
        #expect(label(machine.upstreamBodyReceived(&third)) == "none")
        let end = machine.upstreamEndReceived(now: .now)
        guard case .endAnswer(let tail, _) = end else {
            Issue.record("expected endAnswer, got \(label(end))")
            return
        }
        #expect(tail.map { String(buffer: $0) } == "data: de")
    }

    @Test("with usage off a stream is not asked for its usage and the answer's counts are not read")
    func usageOff() {
        let body = #"{"model":"gpt-x","stream":true,"messages":[]}"#
        var results: [Bool: (body: String, usage: TokenUsage?, streamed: Bool)] = [:]
        for reads in [true, false] {
            var (machine, _) = machine()
            machine.request.readsUsage = reads
            var chunk = ByteBuffer(string: body)
            _ = machine.bodyReceived(&chunk, reserve: { _ in true })
            _ = machine.endReceived(keepsTexts: false)
            _ = machine.routed(.candidates(Self.keys))
            _ = machine.keyPicked(Self.keys[0])
            _ = machine.connected()
            let sentBody = String(buffer: machine.request.body)
            _ = machine.upstreamHeadReceived(Self.head(200, eventStream: true), now: .now, transcriptLimit: 0)
            var part = ByteBuffer(
                string: "data: {\"choices\":[]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
                    + "\"completion_tokens\":4,\"total_tokens\":7}}\n\ndata: [DONE]\n\n")
            _ = machine.upstreamBodyReceived(&part)
            _ = machine.upstreamEndReceived(now: .now)
            results[reads] = (sentBody, machine.request.draft.sniffer?.finish(), machine.eventStream)
        }
        #expect(results[true]?.body.contains("include_usage") == true)
        #expect(results[true]?.usage == TokenUsage(promptTokens: 3, completionTokens: 4, totalTokens: 7))
        #expect(results[false]?.body == body)
        #expect(results[false]?.usage == nil)
        // The answer is still known to be an event stream: it is framed whole events at a time.
        #expect(results[false]?.streamed == true)
    }

    @Test("a request with a prompt cache key goes to its rendezvous key, and fails over in that order")
    func cacheAffinity() {
        var (machine, _) = machine()
        var chunk = ByteBuffer(string: #"{"model":"gpt-x","prompt_cache_key":"tenant-\u0037"}"#)
        _ = machine.bodyReceived(&chunk, reserve: { _ in true })
        #expect(label(machine.endReceived(keepsTexts: false)) == "route")
        #expect(machine.request.cacheAffinity == "tenant-7")
        let first = RendezvousHash.pick("tenant-7", from: Self.keys)!
        // No pick by the rotation: the key is the value's own.
        #expect(label(machine.routed(.candidates(Self.keys))) == "connect(\(first.id))")
        _ = machine.connected()
        _ = machine.upstreamFailed(.connectFailed("refused"), reused: false)
        _ = machine.keyFailureReported(marked: true)
        let rest = Self.keys.filter { $0 != first }
        let second = RendezvousHash.pick("tenant-7", from: rest)!
        #expect(label(machine.routed(.candidates(rest))) == "connect(\(second.id))")
        #expect(machine.tried == [first.id, second.id])
    }

    @Test("an event stream cut by the upstream ends with an error event; another answer is cut off")
    func midStreamFailure() {
        var stream = sent()
        _ = stream.upstreamHeadReceived(Self.head(200, eventStream: true), now: .now, transcriptLimit: 0)
        let cut = stream.upstreamFailed(.readTimeout, reused: false)
        guard case .cutAnswer(let key, let reason, let event, let outcome) = cut else {
            Issue.record("expected cutAnswer, got \(label(cut))")
            return
        }
        #expect(key?.id == 1 && reason == "upstream_timeout" && event?.code == "upstream_timeout")
        #expect(outcome == RequestOutcome(status: 200, error: "upstream_timeout"))

        var plain = sent()
        _ = plain.upstreamHeadReceived(Self.head(200), now: .now, transcriptLimit: 0)
        guard case .cutAnswer(_, _, let none, let plainOutcome) = plain.upstreamFailed(.connectionClosed, reused: true)
        else {
            Issue.record("expected cutAnswer")
            return
        }
        #expect(none == nil)
        #expect(plainOutcome == RequestOutcome(status: 200, error: "upstream_stream_error"))
    }

    @Test("the first-byte timeout fails the attempt; it means nothing once the answer started")
    func firstByteTimeout() {
        var waiting = sent(maxAttempts: 1)
        #expect(label(waiting.firstByteTimedOut()) == "reportKeyFailure(1)")
        _ = waiting.keyFailureReported(marked: true)
        #expect(label(waiting.routed(.candidates(Self.keys))) == "answerError(504)")

        var streaming = sent()
        _ = streaming.upstreamHeadReceived(Self.head(200), now: .now, transcriptLimit: 0)
        #expect(label(streaming.firstByteTimedOut()) == "none")
    }

    @Test("a body that falls silent gets 408 with a row; an unauthenticated one gets 408 without")
    func receiveDeadline() {
        let body = ErrorBody(message: "slow", type: "invalid_request_error", code: "client_timeout")
        var (receiving, _) = machine()
        let answer = receiving.receiveTimedOut(body)
        #expect(label(answer) == "answerError(408,close)")
        #expect(answer.outcome == RequestOutcome(status: 408, error: "client_timeout"))

        var (refused, _) = machine(bearer: false, token: nil)
        let unauthenticated = refused.receiveTimedOut(body)
        #expect(label(unauthenticated) == "answerError(408,close)")
        #expect(unauthenticated.outcome == nil)

        var proxying = sent()
        #expect(label(proxying.receiveTimedOut(body)) == "none")
    }

    @Test("a client that goes away is a 499 before the answer, the answer's status after it; drain says so")
    func clientGone() {
        var before = sent()
        #expect(
            before.clientGone(reason: "client_cancelled").outcome
                == RequestOutcome(status: 499, error: "client_cancelled"))
        var streaming = sent()
        _ = streaming.upstreamHeadReceived(Self.head(200, eventStream: true), now: .now, transcriptLimit: 0)
        #expect(
            streaming.clientGone(reason: "drain_timeout").outcome == RequestOutcome(status: 200, error: "drain_timeout")
        )
        #expect(label(streaming.clientGone(reason: "client_cancelled")) == "none")
        var (receiving, _) = machine()
        #expect(
            receiving.clientGone(reason: "drain_timeout").outcome == RequestOutcome(status: 499, error: "drain_timeout")
        )
    }

    @Test("local answers: health, unknown path and missing token are counted as refused and leave no row")
    func localAnswers() {
        var (health, healthHead) = machine(.GET, "/healthz", bearer: false)
        #expect(label(healthHead) == "none")
        #expect(label(health.endReceived(keepsTexts: false)) == "answerJSON")

        var (unknown, unknownHead) = machine(.GET, "/admin")
        #expect(label(unknownHead) == "countRefused(unknown_path)")
        let notFound = unknown.endReceived(keepsTexts: false)
        #expect(label(notFound) == "answerError(404)")
        #expect(notFound.outcome == nil)

        var (missing, missingHead) = machine(bearer: false, token: nil)
        #expect(label(missingHead) == "countRefused(missing_token)")
        #expect(missing.endReceived(keepsTexts: false).outcome == nil)

        var (invalidPath, _) = machine(.POST, "/v1/../admin")
        let invalid = invalidPath.endReceived(keepsTexts: false)
        #expect(label(invalid) == "answerError(400)")
        #expect(invalid.outcome == RequestOutcome(status: 400, error: "invalid_path"))
    }

    @Test("a body past the limit is 413 at once; past the worker's budget 503, then read to its end and closed")
    func bodyLimits() {
        var (declared, head) = machine(headers: [("content-length", "2000")], maxBodyBytes: 1000)
        #expect(label(head) == "answerError(413,close)")
        #expect(head.outcome == RequestOutcome(status: 413, error: "request_too_large"))
        var ignored = ByteBuffer(string: "x")
        #expect(label(declared.bodyReceived(&ignored, reserve: { _ in true })) == "none")

        var (growing, _) = machine(maxBodyBytes: 10)
        var big = ByteBuffer(string: "01234567890")
        #expect(growing.bodyReceived(&big, reserve: { _ in true }).outcome?.status == 413)

        var (busy, _) = machine()
        var taken = 0
        var part = ByteBuffer(string: "abc")
        #expect(
            label(
                busy.bodyReceived(
                    &part,
                    reserve: {
                        taken += $0
                        return true
                    })) == "none")
        #expect(busy.request.heldBytes == 3 && taken == 3)
        var refused = ByteBuffer(string: "def")
        let answer = busy.bodyReceived(&refused, reserve: { _ in false })
        #expect(label(answer) == "refuseBusy")
        #expect(answer.outcome == RequestOutcome(status: 503, error: "server_busy"))
        #expect(busy.request.heldBytes == 3)
        #expect(label(busy.bodyReceived(&refused, reserve: { _ in true })) == "none")
        #expect(label(busy.endReceived(keepsTexts: false)) == "close")
    }

    @Test("a client asking for 100 Continue is told to send its body")
    func continueExpected() {
        let (_, head) = machine(headers: [("expect", "100-continue")])
        #expect(label(head) == "sendContinue")
    }

    @Test("a token with limits is checked before a key is chosen; its refusal is the answer")
    func tokenLimits() {
        let limited = TokenEntry(id: 9, limits: ClientTokenLimits(rpmLimit: 1))
        var (machine, _) = machine(token: limited)
        #expect(label(machine.endReceived(keepsTexts: false)) == "checkTokenLimits")
        let refusal = machine.tokenLimitsChecked(.rateLimited(limit: 1, retryAfterSeconds: 3))
        guard case .answerError(let answer, _, let outcome) = refusal else {
            Issue.record("expected answerError, got \(label(refusal))")
            return
        }
        #expect(answer.status == .tooManyRequests && answer.retryAfter == 3)
        #expect(outcome?.status == 429)
    }

    @Test("every path through the machine finishes an authenticated request exactly once")
    func exactlyOneFinish() {
        var random = SplitMix(seed: 13)
        var reachedEnd = 0
        for _ in 0..<3000 {
            var (machine, first) = machine(maxAttempts: 1 + random.next(3))
            var finishes = Self.settle(first, &machine, &random)
            for _ in 0..<(1 + random.next(24)) {
                finishes += Self.settle(Self.randomEvent(&machine, &random), &machine, &random)
            }
            if machine.state == .finished { reachedEnd += 1 }
            finishes += machine.clientGone(reason: "client_cancelled").outcome == nil ? 0 : 1
            #expect(finishes == 1, "state \(machine.state)")
            if finishes != 1 { return }
        }
        // The walks reach the ends that matter, not only the client going away.
        #expect(reachedEnd > 1000)
    }

    /// Counts the finishes of `action` and of the follow-ups the handler would feed at once.
    private static func settle(_ action: Machine.Action, _ machine: inout Machine, _ random: inout SplitMix) -> Int {
        var finishes = 0
        var next: Machine.Action? = action
        while let action = next {
            if action.outcome != nil { finishes += 1 }
            switch action {
            case .route:
                next = machine.routed(
                    random.next(8) == 0 ? .exhausted : .candidates(Array(keys.dropFirst(machine.tried.count))))
            case .pick(let candidates):
                next = random.next(6) == 0 ? machine.noKeyPicked() : machine.keyPicked(candidates[0])
            case .reportKeyFailure:
                next = machine.keyFailureReported(marked: random.next(4) != 0)
            case .checkTokenLimits:
                next = machine.tokenLimitsChecked(.allow)
            default:
                next = nil
            }
        }
        return finishes
    }

    /// An event that fits the machine's state most of the time, any event otherwise.
    private static func randomEvent(_ machine: inout Machine, _ random: inout SplitMix) -> Machine.Action {
        let fitting: [Int] =
            switch machine.state {
            case .receiving, .answeringLocally, .discarding: [0, 0, 1]
            case .connecting: [2, 2, 3, 4]
            case .awaitingHead: [6, 6, 6, 5, 3]
            case .holding, .streaming: [7, 7, 9, 9, 3, 10]
            default: [11, 12]
            }
        let event = random.next(10) < 8 ? fitting[random.next(fitting.count)] : random.next(13)
        let body = ErrorBody(message: "slow", type: "invalid_request_error", code: "client_timeout")
        switch event {
        case 0:
            var chunk = ByteBuffer(string: "{}")
            return machine.bodyReceived(&chunk, reserve: { _ in random.next(20) != 0 })
        case 1: return machine.endReceived(keepsTexts: random.next(2) == 0)
        case 2: return machine.connected()
        case 3: return machine.upstreamFailed(.connectionClosed, reused: random.next(2) == 0)
        case 4: return machine.upstreamFailed(.connectFailed("x"), reused: false)
        case 5: return machine.firstByteTimedOut()
        case 6:
            let statuses = [200, 200, 200, 400, 429, 500, 100]
            return machine.upstreamHeadReceived(
                head(statuses[random.next(statuses.count)], eventStream: random.next(2) == 0), now: .now,
                transcriptLimit: 100)
        case 7, 8:
            var part = ByteBuffer(string: "data: x\n\n")
            return machine.upstreamBodyReceived(&part)
        case 9: return machine.upstreamEndReceived(now: .now)
        case 10: return machine.upstreamFailed(.readTimeout, reused: false)
        case 11: return machine.receiveTimedOut(body)
        default: return machine.clientGone(reason: "drain_timeout")
        }
    }

    static func head(_ status: Int, eventStream: Bool = false) -> HTTPResponseHead {
        HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: status),
            headers: HTTPHeaders([("content-type", eventStream ? "text/event-stream" : "application/json")]))
    }
}

/// A short name for an action, for comparing in tests.
func label(_ action: RequestStateMachine.Action) -> String {
    switch action {
    case .none: return "none"
    case .sendContinue: return "sendContinue"
    case .countRefused(let reason): return "countRefused(\(reason.rawValue))"
    case .answerJSON: return "answerJSON"
    case .answerError(let answer, let close, _): return "answerError(\(answer.status.code)\(close ? ",close" : ""))"
    case .refuseBusy: return "refuseBusy"
    case .close: return "close"
    case .checkTokenLimits: return "checkTokenLimits"
    case .route: return "route"
    case .routePinned(let keyID): return "routePinned(\(keyID))"
    case .lookUpObjects(let ids): return "lookUpObjects(\(ids.joined(separator: ",")))"
    case .readObjectRecords(let query, let cursorID):
        let after = query.after.map { ",after:\($0.id)" } ?? ""
        return "readObjectRecords(\(query.kind),\(query.limit)\(after)\(cursorID.map { ",cursor:" + $0 } ?? ""))"
    case .fetchListedObjects(let records): return "fetchListedObjects(\(records.map(\.id).joined(separator: ",")))"
    case .answerList(_, let outcome): return "answerList(\(outcome.status))"
    case .pick: return "pick"
    case .connect(let key, let fresh): return "connect(\(key.id)\(fresh ? ",fresh" : ""))"
    case .send(let key): return "send(\(key.id))"
    case .reportKeyFailure(let key, _): return "reportKeyFailure(\(key.id))"
    case .forwardHead(let head): return "forwardHead(\(head.status.code))"
    case .forwardBody(let bytes): return "forwardBody(\(String(buffer: bytes)))"
    case .passOn(let held, _, _): return "passOn(\(held.head.status.code))"
    case .endAnswer: return "endAnswer"
    case .cutAnswer: return "cutAnswer"
    case .abandon: return "abandon"
    case .upgrade(let head): return "upgrade(\(head.status.code))"
    }
}

/// A small seeded generator, so that a failing walk can be replayed.
struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A number in `0..<bound`.
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
