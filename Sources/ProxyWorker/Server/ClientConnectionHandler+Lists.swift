import NIOCore
import NIOHTTP1
import Shared

/// What the handler does for a list of the token's objects: reads their records off the event loop, fetches
/// the objects from their keys as non-blocking work on it, and writes the list.
extension ClientConnectionHandler {
    /// Reads the token's records for `query` (after the record of `cursorID`) off the event loop.
    func readObjectRecords(_ query: ObjectListQuery, cursorID: String?, context: ChannelHandlerContext) {
        let directory = worker.objects
        let number = requestNumber
        context.eventLoop.makeFutureWithTask { try await directory.list(query, cursorID: cursorID) }
            .assumeIsolated().whenComplete { [self] result in
                guard number == requestNumber else { return }
                switch result {
                case .success(let records):
                    feed { $0.objectRecordsRead(records) }
                case .failure(let error):
                    worker.logger.warning("object list read failed: \(PostgresErrorText.line(error))")
                    feed { $0.objectRecordsRead(nil) }
                }
            }
    }

    /// Fetches each record's object from the key that holds it, all at once (the machine asks a few at a time);
    /// the records of objects the upstream no longer has are dropped, as a delete through the gateway drops them.
    func fetchListedObjects(_ records: [StoredObject], context: ChannelHandlerContext) {
        guard let list = request.listing?.request else { return }
        let loop = context.eventLoop
        let pool = worker.pools.pool(for: loop)
        let target = worker.pools.target
        let settings = request.snapshot.settings
        let now = WallClock.nowMs()
        let fetches = records.map { record -> EventLoopFuture<ObjectFetchResult> in
            switch worker.health.pinnedRoute(request.snapshot.routing, keyID: record.keyID, now: now) {
            case .key(let key):
                let headers = ForwardedHeaders.upstream(
                    from: request.request.head.headers, key: key.value, authority: target.authority)
                let head = HTTPRequestHead(
                    version: .http1_1, method: .GET, uri: target.pathPrefix + "/\(list.collection)/\(record.id)",
                    headers: headers)
                let fetch = ObjectFetch.start(
                    head, pool: pool, loop: loop,
                    timeout: (settings.connectTimeout ?? .seconds(10)) + settings.firstByteTimeout)
                listFetches.append(fetch)
                return fetch.result
            case .waiting(_, let retryAfter):
                return loop.makeSucceededFuture(.keyWaiting(retryAfterSeconds: retryAfter))
            case .invalid, .disabled, .removed:
                return loop.makeSucceededFuture(.keyUnavailable)
            }
        }
        let number = requestNumber
        EventLoopFuture.whenAllSucceed(fetches, on: loop).assumeIsolated().whenSuccess { [self] results in
            for (record, result) in zip(records, results) where result == .gone {
                worker.forgetObject(record.id)
            }
            guard number == requestNumber else { return }
            listFetches = []
            feed { $0.listedObjectsFetched(results) }
        }
    }

    /// Stops the list's fetches under way (the client went away, or the worker cut the connection).
    func cancelListFetches() {
        let fetches = listFetches
        listFetches = []
        for fetch in fetches { fetch.cancel() }
    }

    /// Writes a gathered list.
    func answerList(_ body: ByteBuffer, context: ChannelHandlerContext) {
        let keepAlive = request.request.keepAlive
        var headers = HTTPHeaders([
            ("content-type", "application/json"), ("content-length", String(body.readableBytes)),
        ])
        if !keepAlive { headers.add(name: "connection", value: "close") }
        respond(
            HTTPResponseHead(version: request.request.head.version, status: .ok, headers: headers), body: body,
            keepAlive: keepAlive, context: context)
    }
}
