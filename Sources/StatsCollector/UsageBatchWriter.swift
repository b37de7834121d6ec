import Foundation
import Logging
import ServiceLifecycle
import Shared
import Synchronization

/// Commits usage rows in batched transactions, then acknowledges them to the workers that sent them.
///
/// A batch is committed every `interval`, or as soon as `batchSize` rows wait, with at most `batchSize`
/// rows per transaction. A worker forgets a row only once its acknowledgement arrives, so a collector
/// killed at any moment loses nothing the workers were told is stored: what it held uncommitted is sent
/// again, and the unique request id keeps a row sent twice from counting twice.
final class UsageBatchWriter: Service, Sendable {
    private let store: any UsageStoring
    private let interval: Duration
    private let batchSize: Int
    private let metrics: UsageMetrics?
    private let logger: Logger
    private let queue = Mutex(UsageBatchQueue())
    /// Commit attempts failed since the last one that went through.
    private let failedInARow = Atomic<Int>(0)
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    /// Rung by the first row after the queue was empty: the interval runs from there.
    private let armed: AsyncStream<Void>
    private let arm: AsyncStream<Void>.Continuation

    /// One received line: its row (nil when the line was malformed), the connection it came on and its
    /// number there.
    struct Received: Sendable {
        var row: UsageRow?
        var source: UsageSource?
        var line: UInt64
        /// A count of refused requests, when the line carried one instead of a row.
        var refused: RefusedCount? = nil
        /// An object created or deleted, when the line carried one.
        var object: ObjectChange? = nil

        /// What one line carried (nil: it was malformed, and is only acknowledged).
        init(_ record: UsageWire.Record?, source: UsageSource?, line: UInt64) {
            self.source = source
            self.line = line
            switch record {
            case .usage(let row): self.row = row
            case .refused(let count): refused = count
            case .object(let change): object = change
            case nil: break
            }
        }

        /// A line that carried `row` (nil: malformed).
        init(row: UsageRow?, source: UsageSource?, line: UInt64) {
            self.row = row
            self.source = source
            self.line = line
        }
    }

    /// A writer into `store` committing every `interval` or at `batchSize` rows, at most `batchSize` rows per
    /// transaction.
    init(
        store: any UsageStoring, interval: Duration = .milliseconds(100), batchSize: Int = 1000,
        metrics: UsageMetrics? = nil, logger: Logger
    ) {
        self.store = store
        self.interval = interval
        self.batchSize = batchSize
        self.metrics = metrics
        self.logger = logger
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (armed, arm) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A writer into the SQLite `database`, committing every `interval` or at `batchSize` rows.
    convenience init(
        database: ProxyDatabase, interval: Duration = .milliseconds(100), batchSize: Int = 1000,
        metrics: UsageMetrics? = nil, logger: Logger
    ) {
        self.init(
            store: UsageStore(database: database), interval: interval, batchSize: batchSize, metrics: metrics,
            logger: logger)
    }

    /// Queues lines received from a worker, in their order; the batch is committed once it is full or the
    /// interval since the first of them has passed.
    func enqueue(_ lines: [Received]) {
        guard !lines.isEmpty else { return }
        let (first, full) = queue.withLock { queue in
            let before = queue.count
            queue.append(lines)
            return (before == 0, before < batchSize && queue.count >= batchSize)
        }
        if full {
            ring.yield()
        } else if first {
            arm.yield()
        }
    }

    /// Queues a line received from a worker; a malformed line (nil row) is only acknowledged.
    func enqueue(_ row: UsageRow?, from source: UsageSource? = nil, line: UInt64 = 0) {
        enqueue([Received(row: row, source: source, line: line)])
    }

    /// Queues a line received from a worker, whatever it carried; nil (malformed) is only acknowledged.
    func enqueue(_ record: UsageWire.Record?, from source: UsageSource? = nil, line: UInt64 = 0) {
        enqueue([Received(record, source: source, line: line)])
    }

    /// Lines received and not yet committed.
    var pending: Int { queue.withLock { $0.count } }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            // The interval runs from the first row after the queue was empty: an idle collector sleeps.
            group.addTask { [interval, armed, ring] in
                for await _ in armed {
                    try? await Task.sleep(for: interval)
                    ring.yield()
                }
            }
            await withGracefulShutdownHandler {
                for await _ in doorbell { await flush() }
            } onGracefulShutdown: {
                self.ring.finish()
            }
            arm.finish()
            group.cancelAll()
        }
        // Last out: commit whatever arrived before the workers stopped.
        await flush()
        if pending > 0 { logger.error("usage rows not committed at exit", metadata: ["rows": "\(pending)"]) }
    }

    /// Commits every queued line, `batchSize` per transaction, and acknowledges each batch once committed;
    /// the lines of a failed batch stay queued for the next attempt.
    func flush() async {
        while true {
            let batch = queue.withLock { $0.batch(upTo: batchSize) }
            guard batch.lines > 0 else { break }
            let rows = batch.rows
            let started = ContinuousClock.now
            let new: [UsageRow]
            let refused: [RefusalReason: Int64]
            do {
                (new, refused) = try await store.commit(rows, refused: batch.counts, objects: batch.objects)
            } catch {
                // Said once when batches start failing (a database outage retries every interval), and once
                // when they commit again.
                if failedInARow.add(1, ordering: .relaxed).oldValue == 0 {
                    logger.error(
                        "usage batch failed; retrying until it commits",
                        metadata: ["rows": "\(rows.count)", "error": "\(PostgresErrorText.line(error))"])
                }
                // Rows wait in the queue, so new ones do not start the interval: start it for the retry.
                arm.yield()
                break
            }
            let took = ContinuousClock.now - started
            let failed = failedInARow.exchange(0, ordering: .relaxed)
            if failed > 0 { logger.notice("usage batches commit again", metadata: ["failed attempts": "\(failed)"]) }
            queue.withLock { $0.remove(batch.lines) }
            for (source, line) in batch.acknowledgements.values { source.acknowledge(through: line) }
            metrics?.recordBatch(new: new, received: rows.count, took: took, nowMs: Self.nowMs())
            if !refused.isEmpty { metrics?.recordRefused(refused) }
            logger.trace(
                "usage batch committed", metadata: ["rows": "\(rows.count)", "new": "\(new.count)", "took": "\(took)"])
        }
        metrics?.setPending(pending)
    }

    private static func nowMs() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
