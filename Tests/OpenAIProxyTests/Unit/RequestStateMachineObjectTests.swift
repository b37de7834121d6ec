import HTTPServing
import NIOCore
import NIOHTTP1
import RequestScanning
import Testing

@testable import ProxyWorker
@testable import Shared

/// The request state machine with recorded objects: a request naming the token's object goes to that object's
/// key alone and never fails over; another token's object is a 404; a key that cannot serve is a 503 or 409.
@Suite("Request state machine: objects")
struct RequestStateMachineObjectTests {
    typealias Machine = RequestStateMachine

    static let keys = (1...3).map { RoutableKey(id: Int64($0), hint: "k\($0)", value: "sk-test-\($0)") }
    static let owner = TokenEntry(id: 9, limits: nil)
    static let stranger = TokenEntry(id: 10, limits: nil)
    static let file = StoredObject(id: "file-abc", kind: "file", keyID: 2, tokenID: 9, createdAt: 0, expiresAt: .max)
    static let response = StoredObject(
        id: "resp_1", kind: "response", keyID: 2, tokenID: 9, createdAt: 0, expiresAt: .max)
    static let elsewhere = StoredObject(
        id: "file-far", kind: "file", keyID: 3, tokenID: 9, createdAt: 0, expiresAt: .max)
    static let directory: [String: StoredObject] = [
        file.id: file, response.id: response, elsewhere.id: elsewhere,
    ]

    let database: TestDatabase

    init() throws {
        database = try TestDatabase()
    }

    /// A machine for `method uri` with `body`, of `token`, after its end: the action that follows.
    func ended(
        _ method: HTTPMethod, _ uri: String, body: String? = nil, contentType: String = "application/json",
        token: TokenEntry = owner, maxAttempts: Int = 3
    ) -> (Machine, Machine.Action) {
        var headers = HTTPHeaders([("authorization", "Bearer t")])
        if body != nil { headers.add(name: "content-type", value: contentType) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        let settings = RequestSettings(
            maxBodyBytes: 1 << 20, firstByteTimeout: .seconds(5), connectTimeout: nil,
            selector: KeySelector(strategy: .roundRobin, database: database.database), maxAttempts: maxAttempts)
        let draft = UsageDraft(requestID: "r1", started: .now, timestamp: 0, method: method.rawValue, path: uri)
        var machine = Machine(
            request: InFlightRequest(head: head, draft: draft),
            snapshot: RequestSnapshot(routing: .empty, settings: settings), upstreamHost: "upstream.test")
        _ = machine.headReceived(path: Substring(uri), authenticate: { _ in token })
        if let body {
            var chunk = ByteBuffer(string: body)
            _ = machine.bodyReceived(&chunk, reserve: { _ in true })
        }
        let action = machine.endReceived(keepsTexts: false, objects: { Self.directory[String($0)] })
        return (machine, action)
    }

    @Test("an object in the path binds the request to its key: one attempt there, no rotation")
    func pinnedByPath() {
        var (machine, action) = ended(.GET, "/v1/files/file-abc/content")
        #expect(label(action) == "routePinned(2)")
        #expect(label(machine.pinnedRouted(.key(Self.keys[1]))) == "connect(2)")
        #expect(machine.request.objectCall == nil)
        #expect(label(machine.connected()) == "send(2)")
    }

    @Test("an object in the body binds the request too (previous_response_id, file ids)")
    func pinnedByBody() {
        let (_, chained) = ended(.POST, "/v1/responses", body: #"{"model":"m","previous_response_id":"resp_1"}"#)
        #expect(label(chained) == "routePinned(2)")
        let (_, batch) = ended(.POST, "/v1/batches", body: #"{"input_file_id":"file-abc","endpoint":"/v1/x"}"#)
        #expect(label(batch) == "routePinned(2)")
    }

    @Test("a failed attempt on the bound key is not retried on another key: the client gets that failure")
    func noFailover() {
        var (machine, _) = ended(.GET, "/v1/files/file-abc")
        _ = machine.pinnedRouted(.key(Self.keys[1]))
        _ = machine.connected()
        _ = machine.upstreamHeadReceived(RequestStateMachineTests.head(500), now: .now, transcriptLimit: 0)
        var part = ByteBuffer(string: #"{"error":{"message":"boom"}}"#)
        _ = machine.upstreamBodyReceived(&part)
        #expect(label(machine.upstreamEndReceived(now: .now)) == "reportKeyFailure(2)")
        let answer = machine.keyFailureReported(marked: true)
        #expect(label(answer) == "passOn(500)")
        #expect(machine.tried == [2])

        var (transport, _) = ended(.GET, "/v1/files/file-abc")
        _ = transport.pinnedRouted(.key(Self.keys[1]))
        #expect(label(transport.upstreamFailed(.connectFailed("refused"), reused: false)) == "reportKeyFailure(2)")
        let failed = transport.keyFailureReported(marked: true)
        #expect(label(failed) == "answerError(502)")
        #expect(failed.outcome == RequestOutcome(status: 502, error: "upstream_unreachable"))
    }

    @Test("a cooling or spent key is a 503 with Retry-After; nothing goes upstream")
    func waitingKey() {
        var (machine, _) = ended(.GET, "/v1/files/file-abc")
        let answer = machine.pinnedRouted(.waiting(.cooling, retryAfterSeconds: 7))
        guard case .answerError(let error, _, let outcome) = answer else {
            Issue.record("expected an error, got \(label(answer))")
            return
        }
        #expect(error.status == .serviceUnavailable && error.retryAfter == 7)
        #expect(error.body.message.contains("file-abc") && error.body.message.contains("cooling down"))
        #expect(outcome == RequestOutcome(status: 503, error: "object_key_unavailable"))
        #expect(machine.tried.isEmpty)
    }

    @Test(
        "a key that is invalid, disabled or removed is a 409 naming the reason",
        arguments: [
            (KeyHealthBoard.PinnedRoute.invalid, "object_key_invalid", "is invalid"),
            (.disabled, "object_key_disabled", "was disabled by an operator"),
            (.removed, "object_key_removed", "the key that holds this object was removed"),
        ])
    func unusableKey(route: KeyHealthBoard.PinnedRoute, code: String, reason: String) {
        var (machine, _) = ended(.POST, "/v1/responses", body: #"{"model":"m","previous_response_id":"resp_1"}"#)
        let answer = machine.pinnedRouted(route)
        guard case .answerError(let error, _, let outcome) = answer else {
            Issue.record("expected an error, got \(label(answer))")
            return
        }
        #expect(error.status == .conflict)
        #expect(error.body.code == code && error.body.type == "invalid_request_error")
        #expect(error.body.message.contains("resp_1") && error.body.message.contains(reason))
        #expect(outcome == RequestOutcome(status: 409, error: code))
    }

    @Test("another token naming an object gets OpenAI's 404 for an unknown id, in the path or in the body")
    func ownership() {
        let (_, path) = ended(.GET, "/v1/files/file-abc", token: Self.stranger)
        guard case .answerError(let error, _, let outcome) = path else {
            Issue.record("expected an error, got \(label(path))")
            return
        }
        #expect(error.status == .notFound)
        #expect(
            error.body.json
                == #"{"error":{"message":"No such File object: file-abc","type":"invalid_request_error","param":null,"code":null}}"#
        )
        #expect(outcome == RequestOutcome(status: 404, error: "object_not_found"))
        let (_, body) = ended(
            .POST, "/v1/responses", body: #"{"model":"m","previous_response_id":"resp_1"}"#, token: Self.stranger)
        guard case .answerError(let bodyError, _, _) = body else {
            Issue.record("expected an error, got \(label(body))")
            return
        }
        #expect(bodyError.status == .notFound && bodyError.body.message == "Response with id 'resp_1' not found.")
    }

    @Test("objects of two keys in one request are a 409 that says so")
    func split() {
        let (_, action) = ended(.POST, "/v1/batches", body: #"{"input_file_id":"file-abc","file_ids":["file-far"]}"#)
        guard case .answerError(let error, _, let outcome) = action else {
            Issue.record("expected an error, got \(label(action))")
            return
        }
        #expect(error.status == .conflict && error.body.message.contains("different upstream keys"))
        #expect(outcome == RequestOutcome(status: 409, error: "objects_on_different_keys"))
    }

    @Test("an id the gateway never saw is looked up once, then routes as any other; requests naming none route")
    func unknownRoutesAsBefore() {
        var (unknown, action) = ended(.GET, "/v1/files/file-older-than-the-gateway")
        #expect(label(action) == "lookUpObjects(file-older-than-the-gateway)")
        #expect(label(unknown.objectsLookedUp(objects: { Self.directory[String($0)] })) == "route")
        #expect(unknown.request.pinned == nil)
        #expect(label(unknown.objectsLookedUp(objects: { _ in nil })) == "none")
        let (chat, chatAction) = ended(.POST, "/v1/chat/completions", body: #"{"model":"m","messages":[]}"#)
        #expect(label(chatAction) == "route")
        #expect(chat.request.objectCall == nil && chat.request.pinned == nil)
    }

    @Test("an id another worker recorded since this one's last poll is found by the look-up: bound, or a 404")
    func recordedElsewhere() {
        let late = StoredObject(id: "resp_late", kind: "response", keyID: 3, tokenID: 9, createdAt: 0, expiresAt: .max)
        let body = #"{"model":"m","input":"go on","previous_response_id":"resp_late"}"#
        var (owner, action) = ended(.POST, "/v1/responses", body: body)
        #expect(label(action) == "lookUpObjects(resp_late)")
        #expect(owner.state == .lookingUpObjects)
        #expect(label(owner.objectsLookedUp(objects: { $0 == "resp_late" ? late : nil })) == "routePinned(3)")
        #expect(owner.request.pinned == late)

        var (stranger, _) = ended(.GET, "/v1/responses/resp_late", token: Self.stranger)
        guard
            case .answerError(let answer, _, _) = stranger.objectsLookedUp(objects: { $0 == "resp_late" ? late : nil })
        else {
            Issue.record("no 404")
            return
        }
        #expect(answer.status == .notFound)

        // Words of a path and ids of other shapes are never looked up; a known id needs no look-up.
        let (cancel, cancelAction) = ended(.POST, "/v1/batches/batch_unseen/cancel")
        #expect(label(cancelAction) == "lookUpObjects(batch_unseen)")
        #expect(cancel.state == .lookingUpObjects)
        let (content, contentAction) = ended(.GET, "/v1/files/file-abc/content")
        #expect(label(contentAction) == "routePinned(2)" && content.request.pinned == Self.file)
        let (foreign, foreignAction) = ended(.GET, "/v1/files/abc123-not-openai")
        #expect(label(foreignAction) == "route" && foreign.request.pinned == nil)
        // A client gone while the look-up runs leaves a 499 row.
        var (gone, _) = ended(.GET, "/v1/files/file-gone-meanwhile")
        guard case .abandon(let outcome) = gone.clientGone(reason: "client_cancelled") else {
            Issue.record("no abandon")
            return
        }
        #expect(outcome == RequestOutcome(status: 499, error: "client_cancelled"))
    }

    @Test("create and delete calls are told from the path; a create call's answer is read for its object")
    func calls() {
        var (create, _) = ended(.POST, "/v1/files", body: "--b--", contentType: "multipart/form-data; boundary=b")
        #expect(create.request.objectCall == .create)
        _ = create.routed(.candidates(Self.keys))
        _ = create.keyPicked(Self.keys[0])
        _ = create.connected()
        _ = create.upstreamHeadReceived(RequestStateMachineTests.head(200), now: .now, transcriptLimit: 0)
        var part = ByteBuffer(string: #"{"id":"file-new","object":"file","bytes":3}"#)
        _ = create.upstreamBodyReceived(&part)
        #expect(create.request.draft.sniffer?.createdObject == CreatedObject(id: "file-new", kind: "file"))
        let (delete, action) = ended(.DELETE, "/v1/files/file-abc")
        #expect(delete.request.objectCall == .delete(id: "file-abc"))
        #expect(label(action) == "routePinned(2)")
        let (detach, _) = ended(.DELETE, "/v1/vector_stores/vs_1/files/file-abc")
        #expect(detach.request.objectCall == nil)
    }
}

/// `ObjectDirectory`'s look-up of ids it has not learned, on a real `objects` table.
@Suite("Object directory look-up")
struct ObjectDirectoryLookupTests {
    @Test(
        "a record another worker stored is found and kept; expired ones, unknown ones and those past the limit are not")
    func lookUp() async throws {
        let directory = TemporaryDirectory()
        let database = try ProxyDatabase.open(at: directory.file("objects.db"), migrate: true)
        let store = ObjectStore(database: database)
        let live = StoredObject(id: "file-live", kind: "file", keyID: 1, tokenID: 2, createdAt: 10, expiresAt: 1_000)
        let old = StoredObject(id: "file-old", kind: "file", keyID: 1, tokenID: 2, createdAt: 10, expiresAt: 50)
        let many = (0..<20).map {
            StoredObject(id: "file-n\($0)", kind: "file", keyID: 1, tokenID: 2, createdAt: 10, expiresAt: 1_000)
        }
        try await store.apply([.created(live), .created(old)] + many.map { .created($0) })
        let objects = ObjectDirectory(store: store)
        #expect(try await objects.lookUp(["file-live", "file-old", "file-none"], now: 100) == 1)
        #expect(objects.object("file-live") == live)
        #expect(objects.object("file-old") == nil)
        #expect(try await objects.lookUp(many.map(\.id), now: 100) == ObjectDirectory.lookupLimit)
        #expect(objects.object("file-n15") != nil && objects.object("file-n16") == nil)
        #expect(try await ObjectDirectory().lookUp(["file-live"], now: 100) == 0)
    }
}
