import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Shared
import Synchronization

/// Sends usage rows to the stats collector over its Unix socket, reconnecting when it is away.
///
/// `record` never blocks a request: rows queue in memory and a single writer task ships them in
/// batches, waiting `coalescing` after the first row so that a busy worker writes once per batch, not
/// once per request. While the collector is unreachable rows wait in the queue (up to `capacity`; beyond that the
/// oldest are dropped and counted). A durable spool and acknowledgements are the usage-pipeline issue's.
final class UsageSender: Service, Sendable {
    private let socketPath: String
    private let capacity: Int
    private let coalescing: Duration
    private let logger: Logger
    private let state = Mutex(State())
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    private struct State {
        var queue = CircularBuffer<UsageRow>(initialCapacity: 1024)
        var dropped = 0
    }

    /// A sender to the collector at `socketPath`.
    init(socketPath: String, capacity: Int = 100_000, coalescing: Duration = .milliseconds(5), logger: Logger) {
        self.socketPath = socketPath
        self.capacity = capacity
        self.coalescing = coalescing
        self.logger = logger
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a row for the collector.
    func record(_ row: UsageRow) {
        let dropped = state.withLock { state -> Int? in
            state.queue.append(row)
            guard state.queue.count > capacity else { return nil }
            state.queue.removeFirst()
            state.dropped += 1
            return state.dropped
        }
        // Logged on the first drop and then every 10,000th, not once per request.
        if let dropped, dropped == 1 || dropped % 10_000 == 0 {
            logger.warning(
                "usage queue full; oldest rows dropped",
                metadata: ["queue.capacity": "\(capacity)", "rows.dropped": "\(dropped)"])
        }
        ring.yield()
    }

    /// Rows queued and not yet written to the socket.
    var pending: Int { state.withLock { $0.queue.count } }

    /// The queued rows themselves, oldest first.
    var queued: [UsageRow] { state.withLock { Array($0.queue) } }

    /// Rows dropped because the queue was full.
    var dropped: Int { state.withLock { $0.dropped } }

    func run() async throws {
        var connection: (any Channel)?
        var backoff = Duration.milliseconds(50)
        await withGracefulShutdownHandler {
            for await _ in doorbell {
                try? await Task.sleep(for: coalescing)
                await drain(&connection, backoff: &backoff, stopping: false)
            }
        } onGracefulShutdown: {
            self.ring.finish()
        }
        // Shutting down: give the remaining rows a last chance, bounded so a missing collector cannot hold us.
        let deadline = ContinuousClock.now + .seconds(2)
        while pending > 0 && ContinuousClock.now < deadline {
            await drain(&connection, backoff: &backoff, stopping: true)
        }
        if pending > 0 { logger.warning("usage rows unsent at exit", metadata: ["rows": "\(pending)"]) }
        try? await connection?.close()
    }

    /// Writes every queued row; on failure keeps them and waits before the next attempt.
    private func drain(_ connection: inout (any Channel)?, backoff: inout Duration, stopping: Bool) async {
        while true {
            let batch = state.withLock { state -> [UsageRow] in
                let batch = Array(state.queue.prefix(1000))
                state.queue.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let channel = try await connected(&connection)
                var buffer = channel.allocator.buffer(capacity: batch.count * 256)
                for row in batch { buffer.writeBytes(UsageWire.encode(row)) }
                try await channel.writeAndFlush(buffer)
                backoff = .milliseconds(50)
            } catch {
                state.withLock { state in
                    for row in batch.reversed() { state.queue.prepend(row) }
                }
                try? await connection?.close()
                connection = nil
                logger.debug("stats collector unreachable: \(error)")
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(stopping ? 0.2 : 2))
                if !stopping { ring.yield() }
                return
            }
        }
    }

    private func connected(_ connection: inout (any Channel)?) async throws -> any Channel {
        if let channel = connection, channel.isActive { return channel }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(1))
            .connect(unixDomainSocketPath: socketPath)
            .get()
        connection = channel
        return channel
    }
}
