import HTTPServing
import NIOCore
import NIOHTTP1
import RequestScanning
import Shared

/// The request side: its head decides whether it is answered here, refused or read on; its body is held
/// within the limits; its end reads the model and prepares the body before a key is chosen.
extension RequestStateMachine {
    /// The head arrived (`path` is its target without the query): decides whether the request is answered
    /// here, refused, or read on. `authenticate` looks a bearer header up among the snapshot's tokens.
    mutating func headReceived(path: Substring, authenticate: (String?) -> TokenEntry?) -> Action {
        let head = request.head
        if path == "/healthz" {
            return answerLocally(.health)
        }
        // On the UTF-8 bytes: `hasPrefix` on a substring compares characters (measured: 1 % of a request).
        guard path.utf8.starts(with: "/v1".utf8),
            path.utf8.count == 3 || path.utf8.dropFirst(3).first == UInt8(ascii: "/")
        else {
            local = .error(
                ErrorAnswer(
                    status: .notFound,
                    body: ErrorBody(
                        message: "Unknown path \(head.method.rawValue) \(path).", type: "invalid_request_error",
                        code: "not_found")), outcome: nil)
            state = .answeringLocally
            return .countRefused(.unknownPath)
        }
        request.webSocket = WebSocketUpgrade(head: head, path: path, query: request.query)
        // Authentication comes first: nothing else is revealed to an unknown caller. A browser's socket sends
        // its token as a subprotocol instead.
        let header =
            head.headers.first(name: "authorization") ?? request.webSocket?.subprotocolToken.map { "Bearer " + $0 }
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

    /// The request's end arrived. `keepsTexts`: the chat history stores the texts of requests; `objects` finds
    /// the record of an object id in the worker's memory.
    mutating func endReceived(
        keepsTexts: Bool, objects: (Substring) -> StoredObject? = { _ in nil }
    ) -> Action {
        switch state {
        case .receiving:
            return dispatch(keepsTexts: keepsTexts, objects: objects)
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

    /// The whole request is here: reads its model and the objects it names, prepares the body, then checks the
    /// token's limits or goes for a key.
    private mutating func dispatch(keepsTexts: Bool, objects: (Substring) -> StoredObject?) -> Action {
        let fields = RequestParsing.fields(
            in: request.body, contentType: request.head.headers.first(name: "content-type"))
        var model = fields.model
        request.cacheAffinity = fields.promptCacheKey
        if let upgrade = request.webSocket {
            // A socket's model is in its query (Realtime) or in its messages (checked as they pass).
            model = upgrade.queryModel.map { .named($0) } ?? .absent
            request.cacheAffinity = nil
        }
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
        if request.webSocket == nil {
            // Most requests name no object collection and no object field: nothing is looked up for them.
            let segments = ObjectPath.segments(request.upstreamPath)
            // A list of a recorded collection is the token's own objects, not what one key's account holds.
            if let segments, let token = request.token,
                let list = ObjectListRequest.read(method: request.head.method, segments: segments, query: request.query)
            {
                switch list {
                case .list(let list):
                    listing = ObjectListGathering(request: list, tokenID: token.id, now: request.draft.timestamp)
                    return proceed(model: model, keepsTexts: keepsTexts)
                case .invalid(let error):
                    state = .finished
                    return .answerError(
                        ErrorAnswer(status: .badRequest, body: error), close: !request.keepAlive,
                        outcome: RequestOutcome(status: 400, error: error.code))
                }
            }
            let missing = unlearnedObjectIDs(segments, fields.objectIDs, objects: objects)
            if !missing.isEmpty {
                state = .lookingUpObjects
                afterObjectLookup = (model, keepsTexts, segments, fields.objectIDs)
                return .lookUpObjects(missing)
            }
            if let refused = bindObjects(segments, fields.objectIDs, objects: objects) { return refused }
        }
        return proceed(model: model, keepsTexts: keepsTexts)
    }

    /// The objects a request names were looked up (`objects` now knows what the database had): the request is
    /// bound to them, then goes on.
    mutating func objectsLookedUp(objects: (Substring) -> StoredObject?) -> Action {
        guard state == .lookingUpObjects, let (model, keepsTexts, segments, bodyIDs) = afterObjectLookup else {
            return .none
        }
        afterObjectLookup = nil
        state = .receiving
        if let refused = bindObjects(segments, bodyIDs, objects: objects) { return refused }
        return proceed(model: model, keepsTexts: keepsTexts)
    }

    /// The ids a request of a client token names (its path's object `segments` and `bodyIDs`) that `objects`
    /// does not know but that have the shape of a recorded kind's: another worker may have recorded them since
    /// this one last looked.
    private func unlearnedObjectIDs(
        _ segments: [Substring]?, _ bodyIDs: [String], objects: (Substring) -> StoredObject?
    ) -> [String] {
        guard segments != nil || !bodyIDs.isEmpty, request.token != nil else { return [] }
        var missing: [String] = []
        for id in segments.map(ObjectPath.candidateIDs) ?? [] where ObjectPath.looksLikeObjectID(id) {
            if objects(id) == nil { missing.append(String(id)) }
        }
        for id in bodyIDs where ObjectPath.looksLikeObjectID(id[...]) && objects(id[...]) == nil {
            missing.append(id)
        }
        return missing
    }

    /// Prepares the body of a request bound to its objects (or none), then checks the token's limits or goes for
    /// a key.
    private mutating func proceed(model: RequestModel, keepsTexts: Bool) -> Action {
        request.draft.requestBytes = request.body.readableBytes
        if keepsTexts, !request.draft.fromConsole, ChatHistoryMode.recordsPath(request.draft.path) {
            request.draft.chatRequest = AnswerTranscript.requestText(request.body)
            request.keepsTranscript = true
        }
        if request.readsUsage, StreamUsage.applies(toUpstreamPath: request.upstreamPath),
            let rewritten = StreamUsage.requestingUsage(request.body)
        {
            request.body = rewritten
            request.strippingUsage = true
        }
        if let limits = request.token?.limits {
            state = .checkingLimits
            return .checkTokenLimits(limits, model: model)
        }
        return goOn()
    }

    /// The request may go on: a list is gathered here, any other request goes for a key.
    private mutating func goOn() -> Action {
        if listing != nil { return startListing() }
        state = .routing
        return routeAction
    }

    /// Reads what the path's object `segments` and the body's `bodyIDs` say about recorded objects: a create or
    /// delete call, and the key the token's objects bind the request to. Returns the answer when the objects
    /// refuse the request: a 404 for another token's object (as OpenAI answers an unknown id), a 409 for objects
    /// on two keys.
    private mutating func bindObjects(
        _ segments: [Substring]?, _ bodyIDs: [String], objects: (Substring) -> StoredObject?
    ) -> Action? {
        guard segments != nil || !bodyIDs.isEmpty, let token = request.token else { return nil }
        if let segments { request.objectCall = ObjectPath.call(method: request.head.method, segments: segments) }
        let affinity = ObjectAffinity.resolve(
            pathIDs: segments.map(ObjectPath.candidateIDs) ?? [], bodyIDs: bodyIDs, token: token.id, lookup: objects)
        switch affinity {
        case .unbound:
            return nil
        case .pinned(let object):
            request.pinned = object
            return nil
        case .hidden(let object):
            state = .finished
            return .answerError(
                ErrorAnswer(status: .notFound, body: ObjectAffinity.notFound(object)), close: !request.keepAlive,
                outcome: RequestOutcome(status: 404, error: "object_not_found"))
        case .split(let first, let second):
            return fail(
                .conflict, ObjectAffinity.splitMessage(first, second), code: "objects_on_different_keys",
                type: "invalid_request_error")
        }
    }

    /// How a request is routed: to any key that may serve it, or to the one that holds its objects.
    var routeAction: Action {
        guard let pinned = request.pinned else { return .route }
        return .routePinned(keyID: pinned.keyID)
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
        return goOn()
    }
}
