import GRDB
import Shared

/// The collector's writes on SQLite: `UsageBatchWriter.commit` and `LogMaintenance.prune` in the shared file's
/// write transactions.
struct UsageStore: UsageStoring {
    /// The shared database.
    let database: ProxyDatabase

    func commit(
        _ rows: [UsageRow], refused counts: [RefusedCount], objects: [ObjectChange]
    ) async throws -> (new: [UsageRow], refused: [RefusalReason: Int64]) {
        try await database.pool.write { db in
            // The real usage replaces a request's quota reservation in the same transaction.
            try TokenQuotaReservations.release(requestIDs: rows.lazy.filter { $0.tokenID != nil }.map(\.requestID), db)
            if !objects.isEmpty { try ObjectStore.apply(objects, db) }
            return (try UsageBatchWriter.commit(rows, db), try UsageBatchWriter.commit(counts, db))
        }
    }

    func prune(olderThan cutoff: Int64, chunk: Int) async throws -> Int {
        try await LogMaintenance.prune(database, olderThan: cutoff, chunk: chunk)
    }
}
