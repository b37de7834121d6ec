import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Shared
import Synchronization

/// Writes usage rows to the database in batched transactions: the request log (idempotent on request id),
/// hourly aggregates, the per key × model counters, and key and token counters.
final class UsageBatchWriter: Service, Sendable {
    private let database: ProxyDatabase
    private let interval: Duration
    private let batchSize: Int
    private let logger: Logger
    private let queue = Mutex([UsageRow]())

    /// A writer committing every `interval`, at most `batchSize` rows per transaction.
    init(database: ProxyDatabase, interval: Duration = .milliseconds(100), batchSize: Int = 1000, logger: Logger) {
        self.database = database
        self.interval = interval
        self.batchSize = batchSize
        self.logger = logger
    }

    /// Queues a row received from a worker.
    func enqueue(_ row: UsageRow) {
        queue.withLock { $0.append(row) }
    }

    /// Rows received and not yet committed.
    var pending: Int { queue.withLock { $0.count } }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.interval)
                await self.flush()
            }
        }
        // Last out: commit whatever arrived before the workers stopped.
        await flush()
        if pending > 0 { logger.error("usage rows not committed at exit", metadata: ["rows": "\(pending)"]) }
    }

    /// Commits every queued row, `batchSize` per transaction; rows of a failed batch stay queued.
    func flush() async {
        while true {
            let batch = queue.withLock { queue -> [UsageRow] in
                let batch = Array(queue.prefix(batchSize))
                queue.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let started = ContinuousClock.now
                let inserted = try await database.pool.write { db in try Self.commit(batch, db) }
                logger.trace(
                    "usage batch committed",
                    metadata: [
                        "rows": "\(batch.count)", "inserted": "\(inserted)", "took": "\(ContinuousClock.now - started)",
                    ])
            } catch {
                queue.withLock { $0.insert(contentsOf: batch, at: 0) }
                logger.error(
                    "usage batch failed; will retry", metadata: ["rows": "\(batch.count)", "error": "\(error)"])
                return
            }
        }
    }

    private struct HourlyKey: Hashable {
        var hour: Int64
        var keyID: Int64
        var model: String
        var tokenID: Int64
    }

    private struct Totals {
        var requests: Int64 = 0
        var successes: Int64 = 0
        var failures: Int64 = 0
        var promptTokens: Int64 = 0
        var completionTokens: Int64 = 0
        var latency: Double = 0
        var ttfb: Double = 0
        var lastUsed: Int64 = 0

        mutating func add(_ row: UsageRow) {
            requests += 1
            if row.status < 400 && row.error == nil { successes += 1 } else { failures += 1 }
            promptTokens += Int64(row.promptTokens ?? 0)
            completionTokens += Int64(row.completionTokens ?? 0)
            latency += row.latencyMs
            ttfb += row.ttfbMs ?? 0
            lastUsed = max(lastUsed, row.timestamp)
        }
    }

    /// Inserts the rows and folds the new ones into the aggregates, in the caller's transaction.
    static func commit(_ rows: [UsageRow], _ db: Database) throws -> Int {
        let insert = try UsageLogInsert(db)
        var hourly: [HourlyKey: Totals] = [:]
        var perKeyModel: [HourlyKey: Totals] = [:]
        var perKey: [Int64: Totals] = [:]
        var perToken: [Int64: Totals] = [:]
        var inserted = 0
        for row in rows {
            // A row sent twice is ignored by the unique request_id and must not count twice.
            guard try insert.insert(row) else { continue }
            inserted += 1
            let hour = (row.timestamp / 3_600_000) * 3600
            hourly[
                HourlyKey(hour: hour, keyID: row.keyID ?? 0, model: row.model ?? "", tokenID: row.tokenID ?? 0),
                default: Totals()
            ].add(row)
            if let keyID = row.keyID {
                perKey[keyID, default: Totals()].add(row)
                perKeyModel[HourlyKey(hour: 0, keyID: keyID, model: row.model ?? "", tokenID: 0), default: Totals()]
                    .add(row)
            }
            if let tokenID = row.tokenID { perToken[tokenID, default: Totals()].add(row) }
        }
        for (key, totals) in hourly {
            try db.cachedStatement(
                sql: """
                    INSERT INTO usage_hourly (hour, key_id, model, token_id, requests, successes, failures,
                        prompt_tokens, completion_tokens, latency_ms_sum, ttfb_ms_sum)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (hour, key_id, model, token_id) DO UPDATE SET
                        requests = requests + excluded.requests, successes = successes + excluded.successes,
                        failures = failures + excluded.failures, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                        completion_tokens = completion_tokens + excluded.completion_tokens,
                        latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum,
                        ttfb_ms_sum = ttfb_ms_sum + excluded.ttfb_ms_sum
                    """
            ).execute(
                arguments: [
                    key.hour, key.keyID, key.model, key.tokenID, totals.requests, totals.successes, totals.failures,
                    totals.promptTokens, totals.completionTokens, totals.latency, totals.ttfb,
                ])
        }
        for (key, totals) in perKeyModel {
            try db.cachedStatement(
                sql: """
                    INSERT INTO usage_stats (key_id, model, usage_count, last_used) VALUES (?, ?, ?, ?)
                    ON CONFLICT (key_id, model) DO UPDATE SET
                        usage_count = usage_count + excluded.usage_count,
                        last_used = MAX(COALESCE(last_used, ''), excluded.last_used)
                    """
            ).execute(arguments: [key.keyID, key.model, totals.requests, Self.date(totals.lastUsed)])
        }
        for (keyID, totals) in perKey {
            try db.cachedStatement(
                sql: """
                    UPDATE keys SET usage_count = usage_count + ?, success_count = success_count + ?,
                        failure_count = failure_count + ?, prompt_tokens = prompt_tokens + ?,
                        completion_tokens = completion_tokens + ?, last_used = MAX(COALESCE(last_used, ''), ?)
                    WHERE id = ?
                    """
            ).execute(
                arguments: [
                    totals.requests, totals.successes, totals.failures, totals.promptTokens, totals.completionTokens,
                    Self.date(totals.lastUsed), keyID,
                ])
        }
        for (tokenID, totals) in perToken {
            try db.cachedStatement(
                sql: """
                    UPDATE client_tokens SET request_count = request_count + ?, prompt_tokens = prompt_tokens + ?,
                        completion_tokens = completion_tokens + ?, last_used = MAX(COALESCE(last_used, ''), ?)
                    WHERE id = ?
                    """
            ).execute(
                arguments: [
                    totals.requests, totals.promptTokens, totals.completionTokens, Self.date(totals.lastUsed), tokenID,
                ])
        }
        return inserted
    }

    private static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
