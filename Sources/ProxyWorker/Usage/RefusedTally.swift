import Shared

/// A worker's counts of requests refused before a token was known, per minute and reason, between two
/// sends to the collector: pure, so the handler's side (count, log a sample) and the sender's side (what
/// to send) are tested without sockets.
///
/// Only the current minute and those not yet sent are held: a few entries, whatever the flood.
struct RefusedTally {
    private struct Slot: Hashable {
        var minute: Int64
        var reason: RefusalReason
    }

    /// The worker process's name in the records it sends.
    let source: String
    private var counts: [Slot: Int64] = [:]
    /// Slots counted since the last `drain`.
    private var changed: Set<Slot> = []

    /// A tally for the process named `source`.
    init(source: String) {
        self.source = source
    }

    /// What `count` tells its caller.
    struct Counted: Equatable {
        /// The first refusal for this reason in this minute: log it as the minute's sample.
        var sample: Bool
        /// The tally had nothing to send before: a send must be arranged.
        var becameDirty: Bool
    }

    /// Counts one refusal for `reason` at `now` (Unix ms).
    mutating func count(_ reason: RefusalReason, now: Int64) -> Counted {
        let slot = Slot(minute: RefusedCount.minute(of: now), reason: reason)
        let total = counts[slot, default: 0] + 1
        counts[slot] = total
        let becameDirty = changed.isEmpty
        changed.insert(slot)
        return Counted(sample: total == 1, becameDirty: becameDirty)
    }

    /// Whether something counted is not sent yet.
    var isDirty: Bool { !changed.isEmpty }

    /// The running totals of every minute and reason counted since the last drain, to send; minutes before
    /// the one holding `now` are then forgotten (their totals are final once sent).
    mutating func drain(now: Int64) -> [RefusedCount] {
        let records = changed.map {
            RefusedCount(source: source, minute: $0.minute, reason: $0.reason, count: counts[$0] ?? 0)
        }.sorted { ($0.minute, $0.reason.rawValue) < ($1.minute, $1.reason.rawValue) }
        changed.removeAll(keepingCapacity: true)
        let current = RefusedCount.minute(of: now)
        counts = counts.filter { $0.key.minute >= current }
        return records
    }
}
