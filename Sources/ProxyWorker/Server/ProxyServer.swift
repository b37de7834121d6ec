import HTTPServing
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Shared
import Synchronization

/// The worker's HTTP server: accepts on the socket inherited from the supervisor and serves each
/// connection with a `ClientConnectionHandler` on NIO's pipeline, no request framework in between.
///
/// On graceful shutdown it stops accepting, lets in-flight requests and streams finish (idle keep-alive
/// connections close, a just-accepted one gets to send its first request), and returns when the last
/// connection has closed.
struct ProxyServer: Service {
    let descriptor: Int32
    let core: WorkerContext
    /// Where this worker publishes its connection count, to spread connections across workers.
    var board: WorkerLoadBoard? = nil
    let onServing: @Sendable () -> Void
    /// What a client may take while it sends a request: head, body and keep-alive deadlines, the body budget.
    var clientLimits = ClientLimits()
    /// The most client connections held at once; more wait in the listen backlog.
    var maxConnections = ConnectionCap.defaultLimit(openFileLimit: ConnectionCap.openFileLimit())
    /// How long in-flight requests may run once draining began; then their connections are closed, so
    /// the worker still exits (and sends their usage rows) before the supervisor would kill it.
    var drainLimit: Duration = .seconds(18)

    func run() async throws {
        let core = core
        let drainLimit = drainLimit
        let clientLimits = clientLimits
        let board = board
        let slot = core.worker
        // Connections this worker holds: counted as they are accepted, so the hold-back decision and the cap
        // for the next one already see them, and uncounted as they close.
        let open = ConnectionCap(limit: maxConnections)
        let retirement = Retirement()
        let publish: @Sendable (Int) -> Void = { delta in
            let count = delta > 0 ? open.opened() : open.closed()
            if !retirement.retired { board?.publish(count, slot: slot) }
        }
        board?.publish(0, slot: slot)
        let acceptor = try SharedSocketAcceptor(
            listener: descriptor, logger: core.logger, holdBack: { board?.isAhead(slot: slot) ?? false },
            onAccept: { publish(1) }, cap: open)
        let registry = ConnectionRegistry()
        let group = MultiThreadedEventLoopGroup.singleton
        let accepted = acceptor.connections()
        onServing()
        await withGracefulShutdownHandler {
            for await socket in accepted {
                // A connected socket becomes a NIO channel like one NIO accepted itself.
                // Uncounted exactly once: when the channel closes, or when it never came to be.
                let uncount = Once { publish(-1) }
                ClientBootstrap(group: group)
                    .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                    .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            registry.insert(channel)
                            channel.closeFuture.whenComplete { _ in uncount.run() }
                            // NIO's server pipeline but for the response encoder (`ClientResponseEncoder`), with
                            // the protocol error handler's 400 given by `ClientConnectionHandler`, and without
                            // outbound header validation: every answer header was parsed (and so validated) from the
                            // upstream's answer, or is ours; the validator's pass cost 3k instructions per answer.
                            try channel.pipeline.syncOperations.addHandlers([
                                ClientResponseEncoder(),
                                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                                ReadAheadHandler(), HTTPServerPipelineHandler(),
                                ClientConnectionHandler(worker: core, registry: registry, limits: clientLimits),
                            ])
                        }
                    }
                    .withConnectedSocket(socket)
                    .whenFailure { error in
                        uncount.run()
                        core.logger.warning("could not set up a connection: \(error)")
                    }
            }
            // Accepting stopped: wait for the open connections to finish, up to the drain limit; the last close
            // ends the wait. Counted from accept, so a socket whose channel is still being set up is waited for too.
            let drained = await open.waitUntilEmpty(timeout: drainLimit)
            if !drained, !Task.isCancelled {
                let cut = registry.closeAll()
                core.logger.warning("drain timeout: closed \(cut) connection(s) with requests still in flight")
                _ = await open.waitUntilEmpty(timeout: .milliseconds(500))
            }
        } onGracefulShutdown: {
            // A replacement worker with the same index owns the slot from now on.
            retirement.retire()
            acceptor.stop()
            registry.quiesceAll()
        }
    }
}

/// Whether the worker still speaks for its slot on the load board, shared by the accepting thread and the
/// event loops.
private final class Retirement: Sendable {
    private let retiredFlag = Atomic<Bool>(false)

    /// Whether the worker is draining and no longer speaks for its slot.
    var retired: Bool { retiredFlag.load(ordering: .relaxed) }

    /// Marks the worker as draining.
    func retire() {
        retiredFlag.store(true, ordering: .relaxed)
    }
}

/// Runs an action at most once, whichever of several paths gets there first.
private final class Once: Sendable {
    private let done = Atomic<Bool>(false)
    private let action: @Sendable () -> Void

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = action
    }

    func run() {
        if !done.exchange(true, ordering: .relaxed) { action() }
    }
}
