import GRDB
import Shared

extension UsageBatchWriter {
    /// Stores per-minute counts of refused requests in the caller's transaction; returns by how much each
    /// reason's total grew. A count is a running total of its minute, reason and source: the largest one
    /// seen is kept, so a count sent again or out of order changes nothing.
    static func commit(_ counts: [RefusedCount], _ db: Database) throws -> [RefusalReason: Int64] {
        var grown: [RefusalReason: Int64] = [:]
        for count in counts {
            let stored =
                try Int64.fetchOne(
                    db.cachedStatement(
                        sql: "SELECT requests FROM refused_requests WHERE minute = ? AND reason = ? AND source = ?"),
                    arguments: [count.minute, count.reason.rawValue, count.source]) ?? 0
            guard count.count > stored else { continue }
            try db.cachedStatement(
                sql: """
                    INSERT INTO refused_requests (minute, reason, source, requests) VALUES (?, ?, ?, ?)
                    ON CONFLICT (minute, reason, source) DO UPDATE SET requests = excluded.requests
                    """
            ).execute(arguments: [count.minute, count.reason.rawValue, count.source, count.count])
            grown[count.reason, default: 0] += count.count - stored
        }
        return grown
    }
}
