import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared
import Synchronization

/// Accepts worker connections on the stats Unix socket, hands each received row to the batch writer, and
/// answers a `metrics` request with the collector's metrics.
///
/// Rows are decoded in a channel handler on the event loop as lines arrive: one row per request of every
/// worker passes through here, so no per-row task or async hop is spent on them.
struct UsageListener: Service {
    let socketPath: String
    let writer: UsageBatchWriter
    let metrics: UsageMetrics
    let logger: Logger
    let onServing: @Sendable () -> Void

    func run() async throws {
        let writer = writer
        let metrics = metrics
        let logger = logger
        let connections = CollectorConnections()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelOption(
                ChannelOptions.recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20)
            )
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    connections.insert(channel)
                    try channel.pipeline.syncOperations.addHandler(
                        UsageLineHandler(writer: writer, metrics: metrics, logger: logger))
                }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true)
            .get()
        logger.info("collector listening", metadata: ["socket": "\(socketPath)"])
        onServing()
        // On graceful shutdown stop accepting, but read each connection to its end: the workers have
        // stopped by then and their last rows may still sit in the socket buffers.
        await withGracefulShutdownHandler {
            try? await server.closeFuture.get()
        } onGracefulShutdown: {
            server.close(promise: nil)
        }
        await connections.closed(within: .seconds(2))
    }
}

/// The worker connections open on the collector's socket, so that shutdown can wait for them to end.
final class CollectorConnections: Sendable {
    private let open = Mutex<[ObjectIdentifier: any Channel]>([:])

    /// Tracks `channel` until it closes.
    func insert(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        open.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { _ in _ = self.open.withLock { $0.removeValue(forKey: id) } }
    }

    /// Connections open now.
    var count: Int { open.withLock { $0.count } }

    /// Returns once every connection open now has closed (its worker sent its last rows and hung up), or
    /// after `limit`, when those left are closed.
    func closed(within limit: Duration) async {
        let channels = open.withLock { Array($0.values) }
        guard let loop = channels.first?.eventLoop else { return }
        let allClosed = EventLoopFuture.andAllComplete(channels.map(\.closeFuture), on: loop)
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await allClosed.get()
                return true
            }
            group.addTask {
                do {
                    try await Task.sleep(for: limit)
                    return false
                } catch {
                    return true
                }
            }
            if await group.next() == false {
                // Closing what is left completes the wait above.
                for channel in channels { channel.close(promise: nil) }
            }
            group.cancelAll()
        }
    }
}

/// One worker connection, as the rows received on it refer to it: committed rows are acknowledged to it.
final class UsageSource: Sendable {
    private let channel: any Channel

    /// The source for `channel`.
    init(channel: any Channel) {
        self.channel = channel
    }

    /// Tells the worker that the first `lines` lines it sent on this connection are committed.
    func acknowledge(through lines: UInt64) {
        channel.writeAndFlush(channel.allocator.buffer(bytes: UsageWire.acknowledgement(lines)), promise: nil)
    }
}

/// Decodes one usage row per line and queues it for the writer, numbering the lines of its connection.
///
/// A worker writes one row per request as the request ends; reading each as it arrives woke the collector
/// for every request, and those wake-ups cost more than the rows' SQLite work. So the connection is read
/// at most every `readInterval`: whatever arrived meanwhile is taken in one read. The rows wait in the
/// kernel's buffer (on disk, as far as a killed worker is concerned, they are safe there).
private final class UsageLineHandler: ChannelInboundHandler {
    // At 2 ms the wake-ups (epoll, read, scheduling) were ~15 % of the collector's CPU at 13k rows/s; a row
    // waits up to the batch interval (100 ms) for its commit anyway, so 10 ms more in the socket costs nothing.
    static let readInterval = TimeAmount.milliseconds(10)

    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let writer: UsageBatchWriter
    let metrics: UsageMetrics
    let logger: Logger
    private var source: UsageSource?
    private var lines: UInt64 = 0
    /// A line longer than any row could be is not buffered without bound: the connection is closed.
    private var splitter = UsageLineSplitter(maximumLineBytes: UsageWire.maximumLineBytes)
    /// The connection asked for the metrics: nothing else is read from it.
    private var answeringMetrics = false
    /// The lines of the current read, handed to the writer together (one lock, not one per row, and no copy).
    private var received: [UsageBatchWriter.Received] = []

    init(writer: UsageBatchWriter, metrics: UsageMetrics, logger: Logger) {
        self.writer = writer
        self.metrics = metrics
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        source = UsageSource(channel: context.channel)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        handOver()
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.readInterval) {
            if context.channel.isActive { context.read() }
        }
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard !answeringMetrics else { return }
        let whole = bytes.withUnsafeReadableBytes { bytes in
            splitter.split(bytes) { line in take(line, context: context) }
        }
        if !whole {
            // An overlong line: the worker reconnects and sends what is unacknowledged again.
            logger.warning("usage connection closed: a line longer than \(UsageWire.maximumLineBytes) bytes")
            context.close(promise: nil)
        }
    }

    private func take(_ line: UnsafeRawBufferPointer, context: ChannelHandlerContext) {
        guard !answeringMetrics else { return }
        if lines == 0, line.elementsEqual(UsageWire.metricsRequest.utf8) {
            answeringMetrics = true
            let text = context.channel.allocator.buffer(bytes: metrics.exposition())
            context.writeAndFlush(wrapOutboundOut(text)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        lines += 1
        // A usage row (nearly every line) goes into its queue entry as decoded, not through `Record`: the row was
        // copied into the enum, out of it again and the enum then destroyed, about 1,300 instructions a line.
        if let row = UsageWire.decode(line) {
            received.append(UsageBatchWriter.Received(row: row, source: source, line: lines))
            return
        }
        let record = UsageWire.decodeRecord(line)
        if record == nil {
            logger.warning("malformed usage line dropped", metadata: ["bytes": "\(line.count)"])
        }
        // A malformed line is queued too, without a row, so that it is acknowledged in its turn.
        received.append(UsageBatchWriter.Received(record, source: source, line: lines))
    }

    func channelInactive(context: ChannelHandlerContext) {
        handOver()
        context.fireChannelInactive()
    }

    private func handOver() {
        guard !received.isEmpty else { return }
        let count = received.count
        writer.enqueue(received)
        // The writer's queue keeps that array as it is: the next read's lines go to a new one of about its size.
        received = []
        received.reserveCapacity(count)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A broken connection: the worker reconnects and sends what is unacknowledged again.
        logger.warning("usage connection closed: \(error)")
        context.close(promise: nil)
    }
}
