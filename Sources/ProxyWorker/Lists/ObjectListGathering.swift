import HTTPServing
import NIOCore
import RequestScanning
import Shared

/// What became of one listed object asked of the key that holds it.
enum ObjectFetchResult: Equatable, Sendable {
    /// The upstream's answer: the object's JSON.
    case found(ByteBuffer)
    /// The upstream answered 404: the object was deleted outside the gateway, and its record goes.
    case gone
    /// The key that holds it was removed, disabled or is invalid: the object cannot be reached and is left out.
    case keyUnavailable
    /// The key is cooling down or out of quota for this long (seconds).
    case keyWaiting(retryAfterSeconds: Int)
    /// The upstream failed otherwise: its status (nil: no answer, or not an object).
    case failed(status: Int?)
}

/// One list request's page, gathered as pure logic: records are read in list order, the objects they name are
/// fetched from their keys a few at a time, and the page is answered once it is full or the records run out.
/// Objects the upstream no longer has, on unreachable keys, or outside the list's filter are left out, and more
/// records are read in their place.
struct ObjectListGathering {
    /// What to do next.
    enum Step: Equatable {
        /// Read the token's records in list order, at most `limit`, after `after` (after the client's cursor
        /// id `cursorID` on the first read).
        case read(ObjectListQuery, cursorID: String?)
        /// Fetch these records' objects from their keys.
        case fetch([StoredObject])
        /// Answer with this list.
        case answer(ByteBuffer)
        /// Answer with this error.
        case fail(RequestStateMachine.ErrorAnswer)
    }

    /// The most objects fetched at once for one list.
    static let fetchesAtOnce = 8

    let request: ObjectListRequest
    private let tokenID: Int64
    /// Records expired at this time (Unix milliseconds, the request's arrival) are not listed.
    private let now: Int64
    /// Objects gathered, in the order records were read.
    private var gathered: [(id: String, body: ByteBuffer)] = []
    /// Records read and not fetched yet.
    private var unfetched: ArraySlice<StoredObject> = []
    /// Records being fetched.
    private(set) var fetching: [StoredObject] = []
    /// The last record read: the next read continues after it.
    private var lastRead: StoredObject?
    /// The last read filled its limit: more records may follow.
    private var moreRecords = true

    /// The gathering of `request`'s page for client token `tokenID`, of the records live at `now`.
    init(request: ObjectListRequest, tokenID: Int64, now: Int64) {
        self.request = request
        self.tokenID = tokenID
        self.now = now
    }

    /// A `before` page walks the records the other way from its cursor, and is turned round at the end.
    private var walksBackwards: Bool {
        if case .before = request.cursor { return true }
        return false
    }

    /// The first step: the first read.
    func start() -> Step {
        var cursorID: String?
        switch request.cursor {
        case .after(let id), .before(let id): cursorID = id
        case nil: break
        }
        return .read(query(after: nil), cursorID: cursorID)
    }

    private func query(after: StoredObject?) -> ObjectListQuery {
        // One more than a page: a full read says more may follow (`has_more`).
        ObjectListQuery(
            tokenID: tokenID, kind: request.kind, newestFirst: request.newestFirst != walksBackwards,
            after: after.map(ObjectListQuery.Cursor.init), limit: request.limit + 1, now: now)
    }

    /// Records were read (`records`, in list order).
    mutating func recordsRead(_ records: [StoredObject]) -> Step {
        moreRecords = records.count >= request.limit + 1
        if let last = records.last { lastRead = last }
        unfetched.append(contentsOf: records)
        return next()
    }

    /// The objects of `fetching` were asked of their keys, with `results` in the same order.
    mutating func fetched(_ results: [ObjectFetchResult]) -> Step {
        let records = fetching
        fetching = []
        guard results.count == records.count else { return .fail(Self.failure(status: nil, kind: request.kind)) }
        for (record, result) in zip(records, results) {
            switch result {
            case .found(let body):
                guard Self.isObject(body) else { return .fail(Self.failure(status: nil, kind: request.kind)) }
                if passesFilter(body) { gathered.append((record.id, body)) }
            case .gone, .keyUnavailable:
                continue
            case .keyWaiting(let seconds):
                return .fail(
                    RequestStateMachine.ErrorAnswer(
                        status: .serviceUnavailable,
                        body: ErrorBody(
                            message:
                                "An upstream key that holds some of your \(request.collection) is cooling down "
                                + "(rate limited or failing); retry after \(seconds) s.",
                            type: "server_error", code: "object_key_unavailable"),
                        retryAfter: seconds))
            case .failed(let status):
                return .fail(Self.failure(status: status, kind: request.kind))
            }
        }
        return next()
    }

    private mutating func next() -> Step {
        let wanted = request.limit - gathered.count
        if wanted <= 0 { return .answer(answer(hasMore: !unfetched.isEmpty || moreRecords)) }
        if !unfetched.isEmpty {
            let count = min(Self.fetchesAtOnce, wanted, unfetched.count)
            fetching = Array(unfetched.prefix(count))
            unfetched = unfetched.dropFirst(count)
            return .fetch(fetching)
        }
        guard moreRecords, let lastRead else { return .answer(answer(hasMore: false)) }
        return .read(query(after: lastRead), cursorID: nil)
    }

    /// The list filter OpenAI offers that records cannot answer: a file's `purpose`.
    private func passesFilter(_ body: ByteBuffer) -> Bool {
        guard let purpose = request.purpose else { return true }
        let found = body.withUnsafeReadableBytes { JSONScanner.string(at: [.member("purpose")], in: $0) }
        return found == purpose
    }

    /// Whether `body` is a JSON object (its first byte past white space is `{`), so the list stays JSON.
    private static func isObject(_ body: ByteBuffer) -> Bool {
        let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        return body.readableBytesView.first { !space.contains($0) } == UInt8(ascii: "{")
    }

    /// OpenAI's list shape around the gathered objects, in list order.
    private func answer(hasMore: Bool) -> ByteBuffer {
        let objects = walksBackwards ? gathered.reversed() : gathered
        var buffer = ByteBuffer()
        buffer.reserveCapacity(objects.reduce(96) { $0 + $1.body.readableBytes + 1 })
        buffer.writeString(#"{"object":"list","data":["#)
        for (index, object) in objects.enumerated() {
            if index > 0 { buffer.writeString(",") }
            var body = object.body
            buffer.writeBuffer(&body)
        }
        buffer.writeString(#"],"first_id":"#)
        buffer.writeString(Self.quoted(objects.first?.id))
        buffer.writeString(#","last_id":"#)
        buffer.writeString(Self.quoted(objects.last?.id))
        buffer.writeString(#","has_more":"#)
        buffer.writeString(hasMore ? "true}" : "false}")
        return buffer
    }

    /// `id` as a JSON string (ids are plain ASCII, but nothing from an upstream is trusted to be), or `null`.
    private static func quoted(_ id: String?) -> String {
        guard let id else { return "null" }
        var text = "\""
        for scalar in id.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }

    /// The error for a list an upstream failed (a partial list would look whole): 503 to retry shortly when a key
    /// was rate limited, else 502.
    static func failure(status: Int?, kind: String) -> RequestStateMachine.ErrorAnswer {
        if status == 429 {
            return RequestStateMachine.ErrorAnswer(
                status: .serviceUnavailable,
                body: ErrorBody(
                    message:
                        "The list could not be gathered: an upstream key that holds some of your objects (\(kind)) "
                        + "is rate limited. Retry shortly.",
                    type: "server_error", code: "upstream_rate_limited"),
                retryAfter: 1)
        }
        let why = status.map { "answered \($0)" } ?? "gave no usable answer"
        return RequestStateMachine.ErrorAnswer(
            status: .badGateway,
            body: ErrorBody(
                message:
                    "The list could not be gathered: the upstream \(why) for one of your objects (\(kind)). "
                    + "Retry shortly.",
                type: "server_error", code: "upstream_error"))
    }
}
