import Shared

/// Where the collector writes — the request log, its aggregates, the chat history, refused counts — and what
/// the retention job deletes, the same on every engine: `UsageStore` (SQLite) and `PostgresUsageStore`, held to
/// one behaviour by one suite run against both.
protocol UsageStoring: Sendable {
    /// In one transaction: drops the quota reservations of `rows`' requests, stores `objects` (so an object's
    /// record commits with the usage row of the request that created it), stores the rows the log does not hold
    /// yet with their chat-history rows, folds those into the aggregates, and stores `counts` (the largest total
    /// per minute, reason and source). Returns the new rows, in order (a row sent twice is stored and counted
    /// once), and by how much each refusal reason's total grew.
    func commit(
        _ rows: [UsageRow], refused counts: [RefusedCount], objects: [ObjectChange]
    ) async throws -> (new: [UsageRow], refused: [RefusalReason: Int64])

    /// Deletes request-log and chat-history rows and refused counts older than `cutoff` (Unix ms), at most
    /// `chunk` rows per transaction so no lock is held long; the aggregates stay. Returns how many.
    func prune(olderThan cutoff: Int64, chunk: Int) async throws -> Int
}

extension UsageStoring {
    /// Commits `rows` and `counts` with no object changes.
    func commit(
        _ rows: [UsageRow], refused counts: [RefusedCount]
    ) async throws -> (new: [UsageRow], refused: [RefusalReason: Int64]) {
        try await commit(rows, refused: counts, objects: [])
    }
}
