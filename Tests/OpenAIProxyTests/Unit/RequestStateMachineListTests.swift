import Foundation
import HTTPServing
import NIOCore
import NIOHTTP1
import Testing

@testable import ProxyWorker
@testable import Shared

/// The request state machine on a list endpoint: the token's records are read, their objects fetched from their
/// keys a few at a time, and the list answered in OpenAI's format; objects gone upstream or on unreachable keys
/// are left out, an upstream error fails the list, and the client may leave at any point.
@Suite("Request state machine: lists")
struct RequestStateMachineListTests {
    typealias Machine = RequestStateMachine

    let database: TestDatabase

    init() throws {
        database = try TestDatabase()
    }

    private static func record(_ number: Int, key: Int64 = 1) -> StoredObject {
        StoredObject(
            id: "file-\(number)", kind: "file", keyID: key, tokenID: 9, createdAt: Int64(1000 - number),
            expiresAt: .max)
    }

    private static func found(_ number: Int, purpose: String = "batch") -> ObjectFetchResult {
        .found(ByteBuffer(string: #"{"id":"file-\#(number)","object":"file","purpose":"\#(purpose)"}"#))
    }

    /// A machine for `GET uri` of `token` after its end, and the action that follows.
    private func ended(_ uri: String, token: TokenEntry = TokenEntry(id: 9, limits: nil)) -> (Machine, Machine.Action) {
        let head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders([("authorization", "Bearer t")]))
        let settings = RequestSettings(
            maxBodyBytes: 1 << 20, firstByteTimeout: .seconds(5), connectTimeout: nil,
            selector: KeySelector(strategy: .roundRobin, database: database.database), maxAttempts: 3)
        let path = uri.split(separator: "?", maxSplits: 1)
        var request = InFlightRequest(
            head: head,
            draft: UsageDraft(requestID: "r1", started: .now, timestamp: 5000, method: "GET", path: String(path[0])))
        request.query = path.count > 1 ? path[1] : nil
        var machine = Machine(
            request: request, snapshot: RequestSnapshot(routing: .empty, settings: settings),
            upstreamHost: "upstream.test")
        _ = machine.headReceived(path: path[0], authenticate: { _ in token })
        let action = machine.endReceived(keepsTexts: false)
        return (machine, action)
    }

    /// The JSON of a list answer.
    private func list(_ action: Machine.Action) -> [String: Any]? {
        guard case .answerList(let body, let outcome) = action, outcome == RequestOutcome(status: 200, error: nil)
        else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
    }

    private func ids(_ list: [String: Any]?) -> [String]? {
        (list?["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
    }

    @Test(
        "page → fetches → answer: one more record than the page is read, the page's objects fetched, the list answered")
    func page() {
        var (machine, action) = ended("/v1/files?limit=2")
        #expect(label(action) == "readObjectRecords(file,3)")
        #expect(machine.state == .listingObjects)
        guard case .readObjectRecords(let query, nil) = action else { return }
        #expect(query.tokenID == 9 && query.newestFirst && query.now == 5000)
        #expect(
            label(machine.objectRecordsRead([1, 2, 3].map { Self.record($0) })) == "fetchListedObjects(file-1,file-2)")
        let answer = machine.listedObjectsFetched([Self.found(1), Self.found(2)])
        let body = list(answer)
        #expect(ids(body) == ["file-1", "file-2"])
        #expect(body?["object"] as? String == "list")
        #expect(body?["first_id"] as? String == "file-1" && body?["last_id"] as? String == "file-2")
        #expect(body?["has_more"] as? Bool == true)
        #expect(answer.outcome == RequestOutcome(status: 200, error: nil))
        #expect(machine.state == .finished)
        // The usage row is the gateway's own: no key served it.
        #expect(machine.request.draft.key == nil)
        #expect(label(machine.listedObjectsFetched([])) == "none")
    }

    @Test("a cursor goes with the first read; an empty page has null ids and no more")
    func emptyAfterCursor() {
        var (machine, action) = ended("/v1/batches?after=batch_x")
        #expect(label(action) == "readObjectRecords(batch,21,cursor:batch_x)")
        let body = list(machine.objectRecordsRead([]))
        #expect(ids(body) == [])
        #expect(body?["first_id"] is NSNull && body?["last_id"] is NSNull)
        #expect(body?["has_more"] as? Bool == false)
    }

    @Test("objects gone upstream (404) or on unreachable keys are left out, and more records read in their place")
    func gapsFilled() {
        var (machine, _) = ended("/v1/files?limit=2")
        #expect(
            label(machine.objectRecordsRead([1, 2, 3].map { Self.record($0) })) == "fetchListedObjects(file-1,file-2)")
        #expect(label(machine.listedObjectsFetched([.gone, .keyUnavailable])) == "fetchListedObjects(file-3)")
        // The read was full: more records may follow the last one read.
        #expect(label(machine.listedObjectsFetched([Self.found(3)])) == "readObjectRecords(file,3,after:file-3)")
        #expect(label(machine.objectRecordsRead([4].map { Self.record($0) })) == "fetchListedObjects(file-4)")
        let body = list(machine.listedObjectsFetched([Self.found(4)]))
        #expect(ids(body) == ["file-3", "file-4"])
        #expect(body?["has_more"] as? Bool == false)
    }

    @Test("files' purpose filters the fetched files; at most 8 are fetched at once")
    func purposeAndBatches() {
        var (machine, _) = ended("/v1/files?purpose=batch")
        let records = (1...10).map { Self.record($0) }
        #expect(
            label(machine.objectRecordsRead(records))
                == "fetchListedObjects(\((1...8).map { "file-\($0)" }.joined(separator: ",")))")
        let results = (1...8).map { Self.found($0, purpose: $0.isMultiple(of: 2) ? "batch" : "assistants") }
        #expect(label(machine.listedObjectsFetched(results)) == "fetchListedObjects(file-9,file-10)")
        let body = list(machine.listedObjectsFetched([Self.found(9), Self.found(10, purpose: "fine-tune")]))
        #expect(ids(body) == ["file-2", "file-4", "file-6", "file-8", "file-9"])
        #expect(body?["has_more"] as? Bool == false)
    }

    @Test("a before page walks back from its cursor and is answered in list order")
    func before() {
        var (machine, action) = ended("/v1/assistants?before=asst_9&limit=2")
        guard case .readObjectRecords(let query, "asst_9") = action else {
            Issue.record("no read: \(label(action))")
            return
        }
        #expect(!query.newestFirst)
        let records = [3, 2, 1].map {
            StoredObject(
                id: "asst_\($0)", kind: "assistant", keyID: 1, tokenID: 9, createdAt: Int64($0), expiresAt: .max)
        }
        _ = machine.objectRecordsRead(records)
        let body = list(
            machine.listedObjectsFetched([
                .found(ByteBuffer(string: #"{"id":"asst_3"}"#)), .found(ByteBuffer(string: #" {"id":"asst_2"}"#)),
            ]))
        #expect(ids(body) == ["asst_2", "asst_3"])
        #expect(body?["first_id"] as? String == "asst_2" && body?["has_more"] as? Bool == true)
    }

    @Test("an upstream error other than 404 fails the list (502; 503 when rate limited or the key is cooling)")
    func upstreamErrors() {
        var (failing, _) = ended("/v1/files")
        _ = failing.objectRecordsRead([1, 2].map { Self.record($0) })
        let failed = failing.listedObjectsFetched([Self.found(1), .failed(status: 500)])
        #expect(label(failed) == "answerError(502)")
        #expect(failed.outcome == RequestOutcome(status: 502, error: "upstream_error"))
        #expect(failing.state == .finished)

        var (cooling, _) = ended("/v1/files")
        _ = cooling.objectRecordsRead([Self.record(1)])
        let waiting = cooling.listedObjectsFetched([.keyWaiting(retryAfterSeconds: 7)])
        guard case .answerError(let answer, _, let outcome) = waiting else {
            Issue.record("no error: \(label(waiting))")
            return
        }
        #expect(answer.status == .serviceUnavailable && answer.retryAfter == 7)
        #expect(outcome?.error == "object_key_unavailable")

        var (limited, _) = ended("/v1/files")
        _ = limited.objectRecordsRead([Self.record(1)])
        let rateLimited = limited.listedObjectsFetched([.failed(status: 429)])
        #expect(label(rateLimited) == "answerError(503)")
        #expect(rateLimited.outcome == RequestOutcome(status: 503, error: "upstream_rate_limited"))

        var (garbled, _) = ended("/v1/files")
        _ = garbled.objectRecordsRead([Self.record(1)])
        #expect(label(garbled.listedObjectsFetched([.found(ByteBuffer(string: "<html>"))])) == "answerError(502)")
    }

    @Test("records that cannot be read: 503; a bad limit or order: 400 before anything is read")
    func refusals() {
        var (machine, _) = ended("/v1/files")
        let unread = machine.objectRecordsRead(nil)
        #expect(label(unread) == "answerError(503)")
        #expect(unread.outcome == RequestOutcome(status: 503, error: "object_records_unavailable"))
        let (_, badLimit) = ended("/v1/batches?limit=0")
        #expect(label(badLimit) == "answerError(400)")
        #expect(badLimit.outcome == RequestOutcome(status: 400, error: "invalid_value"))
        let (_, badOrder) = ended("/v1/files?order=up")
        #expect(label(badOrder) == "answerError(400)")
    }

    @Test("the client gone mid-gather, or the worker's drain cutting it: abandoned once, late results ignored")
    func clientGoneAndDrain() {
        var (gone, _) = ended("/v1/files")
        _ = gone.objectRecordsRead([Self.record(1)])
        let abandoned = gone.clientGone(reason: "client_cancelled")
        #expect(label(abandoned) == "abandon")
        #expect(abandoned.outcome == RequestOutcome(status: 499, error: "client_cancelled"))
        #expect(label(gone.listedObjectsFetched([Self.found(1)])) == "none")

        var (drained, _) = ended("/v1/files")
        #expect(
            drained.clientGone(reason: "drain_timeout").outcome == RequestOutcome(status: 499, error: "drain_timeout"))
        #expect(label(drained.objectRecordsRead([Self.record(1)])) == "none")
    }

    @Test("a list counts against the token's limits as any request: gathered once they allow it")
    func tokenLimits() {
        let limited = TokenEntry(id: 9, limits: ClientTokenLimits(rpmLimit: 1))
        var (allowed, first) = ended("/v1/files", token: limited)
        #expect(label(first) == "checkTokenLimits")
        #expect(label(allowed.tokenLimitsChecked(.allow)) == "readObjectRecords(file,101)")
        var (refused, _) = ended("/v1/files", token: limited)
        let refusal = refused.tokenLimitsChecked(.rateLimited(limit: 1, retryAfterSeconds: 3))
        #expect(label(refusal) == "answerError(429)")
        #expect(label(refused.objectRecordsRead([])) == "none")
    }

    @Test("every path through a list finishes it exactly once")
    func exactlyOneFinish() {
        var random = SplitMix(seed: 29)
        var answered = 0
        for _ in 0..<1000 {
            let limit = 1 + random.next(4)
            var (machine, action) = ended("/v1/files?limit=\(limit)")
            var finishes = action.outcome == nil ? 0 : 1
            var read = 0
            for _ in 0..<(1 + random.next(12)) {
                let event: Machine.Action
                switch random.next(12) {
                case 0: event = machine.objectRecordsRead(random.next(2) == 0 ? nil : [])
                case 1: event = machine.clientGone(reason: "client_cancelled")
                case 2, 3, 4:
                    let count = random.next(limit + 2)
                    event = machine.objectRecordsRead((0..<count).map { Self.record(read + $0) })
                    read += count
                default:
                    let asked = machine.listing?.fetching.count ?? random.next(3)
                    let failures: [ObjectFetchResult] = [
                        .gone, .keyUnavailable, .failed(status: 500), .keyWaiting(retryAfterSeconds: 2),
                    ]
                    event = machine.listedObjectsFetched(
                        (0..<asked).map { _ in
                            random.next(6) == 0 ? failures[random.next(4)] : .found(ByteBuffer(string: "{}"))
                        })
                }
                if event.outcome != nil { finishes += 1 }
                if case .answerList = event { answered += 1 }
            }
            finishes += machine.clientGone(reason: "client_cancelled").outcome == nil ? 0 : 1
            #expect(finishes == 1, "state \(machine.state)")
            if finishes != 1 { return }
        }
        #expect(answered > 100)
    }

    @Test("lists under an object and other methods are not gathered here")
    func notLists() {
        let (_, nested) = ended("/v1/vector_stores/vs_1/files")
        #expect(label(nested) == "route")
        let (_, retrieve) = ended("/v1/files/file-1")
        #expect(label(retrieve) == "route")
    }
}
