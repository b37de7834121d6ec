import HTTPServing
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle
import Shared

/// Accepts worker connections on the stats Unix socket and hands each received row to the batch writer.
///
/// Rows are decoded in a channel handler on the event loop as lines arrive: one row per request of every
/// worker passes through here, so no per-row task or async hop is spent on them.
struct UsageListener: Service {
    let socketPath: String
    let writer: UsageBatchWriter
    let logger: Logger
    let onServing: @Sendable () -> Void

    func run() async throws {
        let writer = writer
        let logger = logger
        let connections = ConnectionRegistry()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    connections.insert(channel)
                    // A line longer than any row could be is not buffered without bound: the connection is closed.
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: UsageWire.maximumLineBytes))
                    try channel.pipeline.syncOperations.addHandler(UsageLineHandler(writer: writer, logger: logger))
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

/// Decodes one usage row per line and queues it for the writer.
private final class UsageLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let writer: UsageBatchWriter
    let logger: Logger

    init(writer: UsageBatchWriter, logger: Logger) {
        self.writer = writer
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if let row = line.withUnsafeReadableBytes({ UsageWire.decode($0) }) {
            writer.enqueue(row)
        } else {
            logger.warning("malformed usage line dropped", metadata: ["bytes": "\(line.readableBytes)"])
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An overlong line or a broken connection: the worker reconnects and sends its queue again.
        logger.warning("usage connection closed: \(error)")
        context.close(promise: nil)
    }
}
