import Foundation
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle
import Synchronization

@testable import ProxyWorker
@testable import Shared
@testable import StatsCollector

/// The stats collector's services (listener and batch writer) running in this process on a test socket.
final class LocalCollector: Sendable {
    let metrics = UsageMetrics()
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(group: ServiceGroup, task: Task<Void, any Error>) {
        self.group = group
        self.task = task
    }

    /// Starts a collector on `socketPath` writing to `database`, and waits until it listens.
    static func start(
        database: ProxyDatabase, socketPath: String, interval: Duration = .milliseconds(20), batchSize: Int = 1000
    ) async throws -> LocalCollector {
        let logger = Logger(label: "test-collector")
        let metrics = UsageMetrics()
        let writer = UsageBatchWriter(
            database: database, interval: interval, batchSize: batchSize, metrics: metrics, logger: logger)
        let (serving, ready) = AsyncStream.makeStream(of: Void.self)
        let listener = UsageListener(
            socketPath: socketPath, writer: writer, metrics: metrics, logger: logger, onServing: { ready.yield() })
        let group = ServiceGroup(configuration: .init(services: [writer, listener], logger: logger))
        let task = Task { try await group.run() }
        for await _ in serving { break }
        return LocalCollector(group: group, task: task)
    }

    /// Shuts it down gracefully (it commits what it holds).
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// A `UsageSender` running as a service in this process.
final class RunningSender: Sendable {
    let sender: UsageSender
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts `sender`.
    init(_ sender: UsageSender) {
        self.sender = sender
        group = ServiceGroup(configuration: .init(services: [sender], logger: Logger(label: "test-sender")))
        task = Task { [group] in try await group.run() }
    }

    /// Shuts it down gracefully.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// A collector that reads rows and never acknowledges them, then goes away when told: what a worker sees
/// when the collector is killed with rows received and not committed.
final class SilentCollector: Sendable {
    private let server: any Channel
    private let state: State

    /// What its connections share.
    final class State: Sendable {
        let lines = Atomic<Int>(0)
        let channels = Mutex<[any Channel]>([])
    }

    /// Lines read so far.
    var lines: Int { state.lines.load(ordering: .relaxed) }

    private init(server: any Channel, state: State) {
        self.server = server
        self.state = state
    }

    /// Listens on `socketPath`.
    static func start(socketPath: String) async throws -> SilentCollector {
        let state = State()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    state.channels.withLock { $0.append(channel) }
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: 8 << 20))
                    try channel.pipeline.syncOperations.addHandler(LineCounter(state: state))
                }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true)
            .get()
        return SilentCollector(server: server, state: state)
    }

    /// Closes the listener and every connection, as a dying process would.
    func kill() async {
        try? await server.close()
        for channel in state.channels.withLock({ $0 }) { try? await channel.close() }
    }

    private final class LineCounter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let state: State

        init(state: State) {
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            state.lines.add(1, ordering: .relaxed)
        }
    }
}
