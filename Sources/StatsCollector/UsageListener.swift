import HTTPServing
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle
import Shared

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
        let connections = ConnectionRegistry()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelOption(
                ChannelOptions.recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20)
            )
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    connections.insert(channel)
                    // A line longer than any row could be is not buffered without bound: the connection is closed.
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: UsageWire.maximumLineBytes))
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
        let deadline = ContinuousClock.now + .seconds(2)
        while connections.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
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
    static let readInterval = TimeAmount.milliseconds(2)

    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let writer: UsageBatchWriter
    let metrics: UsageMetrics
    let logger: Logger
    private var source: UsageSource?
    private var lines: UInt64 = 0

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
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.readInterval) {
            if context.channel.isActive { context.read() }
        }
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if lines == 0, line.readableBytesView.elementsEqual(UsageWire.metricsRequest.utf8) {
            let text = context.channel.allocator.buffer(bytes: metrics.exposition())
            context.writeAndFlush(wrapOutboundOut(text)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        lines += 1
        let record = line.withUnsafeReadableBytes { UsageWire.decodeRecord($0) }
        if record == nil {
            logger.warning("malformed usage line dropped", metadata: ["bytes": "\(line.readableBytes)"])
        }
        // A malformed line is queued too, without a row, so that it is acknowledged in its turn.
        writer.enqueue(record, from: source, line: lines)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An overlong line or a broken connection: the worker reconnects and sends what is unacknowledged again.
        logger.warning("usage connection closed: \(error)")
        context.close(promise: nil)
    }
}
