import Foundation
import Logging
import PostgresNIO
import Shared

/// The collector's writes on PostgreSQL; behaves as `UsageStore` does on SQLite. Every host's collector writes
/// into the one database, so every aggregate row a batch touches is locked in one order (sorted keys), and two
/// collectors wait for each other instead of deadlocking.
struct PostgresUsageStore: UsageStoring {
    /// The shared database.
    let database: PostgresProxyDatabase

    /// How long a batch may wait for the server: a query written as the server drops the connection is never
    /// answered (see `PostgresProxyDatabase.transaction`), and the writer must get its batch back to retry it.
    /// Retrying a batch that did commit is safe: the request id makes its rows no new rows.
    static let commitBound: Duration = .seconds(30)

    func commit(
        _ rows: [UsageRow], refused counts: [RefusedCount], objects: [ObjectChange]
    ) async throws -> (new: [UsageRow], refused: [RefusalReason: Int64]) {
        let store = self
        switch await awaitBounded(
            Self.commitBound, { try await store.commitNow(rows, refused: counts, objects: objects) })
        {
        case .done(let result): return result
        case .failed(let error): throw error
        case .timedOut: throw PostgresStoreError.noAnswer(within: Self.commitBound)
        }
    }

    /// Commits one batch in one transaction.
    private func commitNow(
        _ rows: [UsageRow], refused counts: [RefusedCount], objects: [ObjectChange]
    ) async throws -> (new: [UsageRow], refused: [RefusalReason: Int64]) {
        let logger = database.logger
        return try await database.transaction { connection in
            // The real usage replaces a request's quota reservation in the same transaction.
            let reserved = rows.filter { $0.tokenID != nil }.map(\.requestID)
            if !reserved.isEmpty {
                try await connection.query(
                    "DELETE FROM token_quota_reservations WHERE request_id = ANY(\(reserved))", logger: logger)
            }
            if !objects.isEmpty { try await PostgresObjectStore.apply(objects, connection, logger: logger) }
            let new = try await Self.insertLog(rows, connection, logger: logger)
            let aggregates = UsageAggregates(new)
            for query in Self.chatHistory.queries(aggregates.chatHistory) {
                try await connection.query(query, logger: logger)
            }
            try await Self.upsert(aggregates, connection, logger: logger)
            return (new, try await Self.commit(counts, connection, logger: logger))
        }
    }

    /// Inserts the rows the log does not hold yet; returns them, in order (the first of a request id sent twice).
    private static func insertLog(
        _ rows: [UsageRow], _ connection: PostgresConnection, logger: Logger
    ) async throws -> [UsageRow] {
        var stored = Set<String>()
        for query in usageLog.queries(rows) {
            for try await requestID in try await connection.query(query, logger: logger).decode(String.self) {
                stored.insert(requestID)
            }
        }
        return rows.filter { stored.remove($0.requestID) != nil }
    }

    func prune(olderThan cutoff: Int64, chunk: Int) async throws -> Int {
        var total = 0
        for table in ["usage_log", "chat_history"] {
            while true {
                let removed = try await count(
                    """
                    WITH gone AS (
                        DELETE FROM \(unescaped: table) WHERE id IN (
                            SELECT id FROM \(unescaped: table) WHERE ts < \(cutoff) LIMIT \(Int64(chunk)))
                        RETURNING 1)
                    SELECT COUNT(*) FROM gone
                    """)
                total += removed
                if removed < chunk { break }
            }
        }
        // The refused-request counts are kept as long as the log (a few rows per minute at most).
        total += try await count(
            "WITH gone AS (DELETE FROM refused_requests WHERE minute < \(cutoff) RETURNING 1) SELECT COUNT(*) FROM gone"
        )
        return total
    }

    /// Runs `query` on its own (one transaction) and reads its one count.
    private func count(_ query: PostgresQuery) async throws -> Int {
        try await database.connection { connection in
            var count: Int64 = 0
            for try await value in try await connection.query(query, logger: database.logger).decode(Int64.self) {
                count = value
            }
            return Int(count)
        }
    }

    /// A Unix-millisecond time as the `TIMESTAMPTZ` columns hold it.
    static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
