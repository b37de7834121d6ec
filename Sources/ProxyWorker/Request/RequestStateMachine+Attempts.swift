import HTTPServing
import NIOCore
import NIOHTTP1
import Shared

/// Key choice and failover: each attempt goes to a key that may serve the request and was not tried yet; a
/// key that fails before any byte reached the client is marked and the next key is tried, up to the
/// configured number of attempts.
extension RequestStateMachine {
    /// Key health answered `.route`.
    mutating func routed(_ route: KeyHealthBoard.Route) -> Action {
        guard state == .routing else { return .none }
        switch route {
        case .candidates(let candidates):
            if tried.count >= snapshot.settings.maxAttempts { return giveUp() }
            // A request with a prompt cache key skips the rotation: its key is the value's own.
            if let affinity = request.cacheAffinity, let key = RendezvousHash.pick(affinity, from: candidates) {
                return keyPicked(key)
            }
            return .pick(candidates)
        case .modelNotFound:
            return fail(
                .notFound, "The model `\(request.draft.model ?? "")` does not exist or no upstream key can reach it.",
                code: "model_not_found", type: "invalid_request_error")
        case .exhausted:
            return giveUp()
        case .unavailable(let retryAfter):
            var message =
                "No upstream key can serve this request now: every key that reaches it is cooling down, out of quota or invalid."
            if let lastFailure { message += " Last upstream failure: \(describe(lastFailure))." }
            return fail(.serviceUnavailable, message, code: "no_available_key", retryAfter: retryAfter)
        case .noKeys:
            return fail(
                .serviceUnavailable, "No upstream API key is available. Add one with `openai-proxy keys add`.",
                code: "no_available_key")
        }
    }

    /// The selector picked `key`: an attempt starts with it.
    mutating func keyPicked(_ key: RoutableKey) -> Action {
        guard state == .routing else { return .none }
        request.draft.key = key
        tried.append(key.id)
        state = .connecting
        // A socket holds its upstream connection for its whole life: never one from the pool.
        return .connect(key, fresh: request.webSocket != nil)
    }

    /// The selector picked none of the candidates: key health is asked again.
    mutating func noKeyPicked() -> Action {
        guard state == .routing else { return .none }
        return routeAction
    }

    /// Key health answered `.routePinned`: the request goes to the key that holds its objects, once, or is
    /// answered here with why that key cannot serve it (no other key can: the objects are not there).
    mutating func pinnedRouted(_ route: KeyHealthBoard.PinnedRoute) -> Action {
        guard state == .routing, let object = request.pinned else { return .none }
        let held =
            "Objects live in the OpenAI account of the upstream key that created them, "
            + "so no other key can serve this request"
        switch route {
        case .key(let key):
            if tried.contains(key.id) { return giveUp() }
            return keyPicked(key)
        case .waiting(let status, let retryAfter):
            let why = status == .quotaExhausted ? "is out of quota" : "is cooling down (rate limited or failing)"
            return fail(
                .serviceUnavailable,
                "The upstream key that holds \(object.id) \(why). \(held); retry after \(retryAfter) s.",
                code: "object_key_unavailable", retryAfter: retryAfter)
        case .invalid:
            return refuseBound(
                object, "the key that holds this object is invalid (the upstream refuses it)",
                code: "object_key_invalid", held)
        case .disabled:
            return refuseBound(
                object, "the key that holds this object was disabled by an operator", code: "object_key_disabled", held)
        case .removed:
            return refuseBound(
                object, "the key that holds this object was removed", code: "object_key_removed", held)
        }
    }

    /// The 409 for a request bound to a key that cannot serve it for `reason`.
    private mutating func refuseBound(_ object: StoredObject, _ reason: String, code: String, _ held: String) -> Action
    {
        fail(
            .conflict, "\(object.id) cannot be reached: \(reason). \(held); an operator can restore the key.",
            code: code, type: "invalid_request_error")
    }

    /// The selector could not pick (its database failed).
    mutating func keySelectionFailed() -> Action {
        guard state == .routing else { return .none }
        return fail(.internalServerError, "The proxy could not select an upstream key.", code: "key_selection_failed")
    }

    /// An upstream connection is ready for the attempt.
    mutating func connected() -> Action {
        guard state == .connecting, let key = request.draft.key else { return .none }
        state = .awaitingHead
        return .send(key)
    }

    /// The attempt's connection could not be made, or failed before the answer's head (`reused`: it had
    /// served an answer before).
    mutating func upstreamFailedBeforeAnswer(_ error: UpstreamError, reused: Bool) -> Action {
        guard state == .connecting || state == .awaitingHead || state == .holding else { return .none }
        held = nil
        if error == .connectionClosed, reused, !usedFreshRetry, let key = request.draft.key {
            // A kept-alive connection the upstream closed while it sat in the pool: the same key once more
            // on a new connection. A fresh connection failing means the upstream itself is in trouble.
            usedFreshRetry = true
            state = .connecting
            return .connect(key, fresh: true)
        }
        return attemptFailed(.transport(error), outcome: .transient(status: nil, reason: describe(error)))
    }

    /// No answer head arrived within the first-byte timeout (the handler dropped the connection).
    mutating func firstByteTimedOut() -> Action {
        guard state == .awaitingHead else { return .none }
        return attemptFailed(
            .transport(.firstByteTimeout), outcome: .transient(status: nil, reason: describe(.firstByteTimeout)))
    }

    /// An attempt failed before any byte reached the client, with what `outcome` says of its key: the key is
    /// reported, and `keyFailureReported` says what follows.
    mutating func attemptFailed(_ failure: AttemptFailure, outcome: KeyOutcome) -> Action {
        lastFailure = failure
        state = .routing
        guard let key = request.draft.key else { return routeAction }
        return .reportKeyFailure(key, outcome)
    }

    /// Key health took the failed attempt's report: `marked` false means a refusal that may not mark the key
    /// (one this client token's requests marked awaits its probe), taken as the request's own: the client
    /// gets it as it came. Otherwise the request moves on to another key while attempts and keys are left.
    mutating func keyFailureReported(marked: Bool) -> Action {
        guard state == .routing else { return .none }
        if !marked, case .answer(let held) = lastFailure { return passOn(held, keySucceeded: false) }
        // A request bound to its objects' key never moves to another key: it gets that key's failure.
        if request.pinned != nil { return giveUp() }
        return .route
    }

    /// Every attempt was used, or every key that may serve the request was tried: the client gets the last
    /// failure as it was.
    mutating func giveUp() -> Action {
        switch lastFailure {
        case .answer(let held):
            return passOn(held, keySucceeded: false)
        case .transport(.connectFailed(let reason)):
            return fail(
                .badGateway, "The upstream \(upstreamHost) is unreachable: \(reason).", code: "upstream_unreachable")
        case .transport(.connectionClosed):
            return fail(
                .badGateway, "The upstream \(upstreamHost) closed the connection before answering.",
                code: "upstream_closed")
        case .transport(.firstByteTimeout), .transport(.readTimeout):
            return fail(
                .gatewayTimeout, "The upstream \(upstreamHost) did not answer in time.", code: "upstream_timeout")
        case nil:
            return fail(
                .internalServerError, "The proxy could not select an upstream key.", code: "key_selection_failed")
        }
    }

    /// The held answer goes to the client as it came.
    mutating func passOn(_ held: HeldAnswer, keySucceeded: Bool) -> Action {
        state = .finished
        status = Int(held.head.status.code)
        return .passOn(held, keySucceeded: keySucceeded, outcome: RequestOutcome(status: status, error: nil))
    }

    /// The last failure, as a log line says it.
    func describe(_ failure: AttemptFailure) -> String {
        switch failure {
        case .answer(let held): return "upstream answered \(held.head.status.code)"
        case .transport(let error): return describe(error)
        }
    }

    private func describe(_ error: UpstreamError) -> String {
        switch error {
        case .connectFailed(let reason): return "connect failed: \(reason)"
        case .connectionClosed: return "connection closed before the answer"
        case .firstByteTimeout:
            return "no answer within \(Double(snapshot.settings.firstByteTimeout.nanoseconds) / 1e9) s"
        case .readTimeout: return "upstream silent for too long"
        }
    }
}
