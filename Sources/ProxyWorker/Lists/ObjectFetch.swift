import NIOCore
import NIOHTTP1

/// One `GET` of a listed object from the key that holds it, over the loop's upstream pool: non-blocking NIO
/// work on the client connection's event loop. Its future always succeeds, with what became of the object.
final class ObjectFetch: UpstreamDelegate {
    /// The most bytes one object's answer may have (objects are a few KiB; more is no object of a list).
    static let maximumBytes = 1 << 20

    private let pool: UpstreamPool
    private let loop: any EventLoop
    private let head: HTTPRequestHead
    private let promise: EventLoopPromise<ObjectFetchResult>
    private var connection: UpstreamConnection?
    private var status: HTTPResponseStatus?
    private var keepAlive = false
    private var body = ByteBuffer()
    /// Holds the fetch alive (the connection's delegate is weak) and ends it at the deadline.
    private var deadline: Scheduled<Void>?
    private var retried = false

    private init(pool: UpstreamPool, loop: any EventLoop, head: HTTPRequestHead) {
        self.pool = pool
        self.loop = loop
        self.head = head
        promise = loop.makePromise()
    }

    /// Starts fetching `head` (its headers carry the key) over `pool`, on `loop`; the whole exchange, connection
    /// included, must end within `timeout`.
    static func start(
        _ head: HTTPRequestHead, pool: UpstreamPool, loop: any EventLoop, timeout: TimeAmount
    ) -> ObjectFetch {
        let fetch = ObjectFetch(pool: pool, loop: loop, head: head)
        fetch.deadline = loop.assumeIsolated().scheduleTask(in: timeout) { fetch.finish(.failed(status: nil)) }
        fetch.start(pool.acquire())
        return fetch
    }

    /// What became of the object.
    var result: EventLoopFuture<ObjectFetchResult> { promise.futureResult }

    /// Stops the fetch (the client went away): its connection is closed, which ends the upstream's work.
    func cancel() {
        finish(.failed(status: nil))
    }

    private func start(_ connecting: EventLoopFuture<UpstreamConnection>) {
        connecting.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let connection):
                guard deadline != nil else {
                    pool.release(connection)
                    return
                }
                self.connection = connection
                connection.delegate = self
                connection.awaitingHead = true
                let channel = connection.channel
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            case .failure:
                finish(.failed(status: nil))
            }
        }
    }

    func upstream(_ connection: UpstreamConnection, received part: HTTPClientResponsePart) {
        guard connection === self.connection else { return }
        switch part {
        case .head(let head):
            guard head.status.code >= 200 else { return }
            connection.awaitingHead = false
            status = head.status
            keepAlive = head.isKeepAlive
        case .body(var chunk):
            guard body.readableBytes + chunk.readableBytes <= Self.maximumBytes else {
                finish(.failed(status: nil))
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            self.connection = nil
            if keepAlive { pool.release(connection) } else { connection.channel.close(promise: nil) }
            switch status?.code {
            case 200?: finish(.found(body))
            case 404?: finish(.gone)
            default: finish(.failed(status: status.map { Int($0.code) }))
            }
        }
    }

    func upstreamReadComplete(_ connection: UpstreamConnection) {}

    func upstream(_ connection: UpstreamConnection, failed error: UpstreamError) {
        guard connection === self.connection else { return }
        self.connection = nil
        // A pooled connection the upstream had closed fails before any answer: once more on a new one.
        if status == nil, connection.servedBefore, !retried, deadline != nil {
            retried = true
            start(pool.connect())
            return
        }
        finish(.failed(status: nil))
    }

    /// Ends the fetch with `result` (once); a connection still in use cannot be reused and is closed.
    private func finish(_ result: ObjectFetchResult) {
        guard let deadline else { return }
        self.deadline = nil
        deadline.cancel()
        if let connection {
            self.connection = nil
            connection.delegate = nil
            connection.channel.close(promise: nil)
        }
        promise.succeed(result)
    }
}
