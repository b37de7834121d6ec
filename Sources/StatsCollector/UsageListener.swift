import Logging
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle
import Shared

/// Accepts worker connections on the stats Unix socket and hands each received row to the batch writer.
struct UsageListener: Service {
    let socketPath: String
    let writer: UsageBatchWriter
    let logger: Logger
    let onServing: @Sendable () -> Void

    func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("collector listening", metadata: ["socket": "\(socketPath)"])
        onServing()
        let writer = writer
        let logger = logger
        // On graceful shutdown stop accepting, but read each connection to its end: the workers have
        // stopped by then and their last rows may still sit in the socket buffers.
        let serverChannel = server.channel
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { connections in
                try? await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        connections.addTask {
                            do {
                                try await connection.executeThenClose { lines in
                                    for try await line in lines {
                                        if let row = UsageWire.decode(line.readableBytesView) {
                                            writer.enqueue(row)
                                        } else {
                                            logger.warning(
                                                "malformed usage line dropped",
                                                metadata: ["bytes": "\(line.readableBytes)"])
                                        }
                                    }
                                }
                            } catch {
                                logger.debug("stats connection ended: \(error)")
                            }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            serverChannel.close(promise: nil)
        }
    }
}
