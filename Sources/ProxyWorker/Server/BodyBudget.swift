import Synchronization

/// The request-body bytes one worker holds in memory, summed over all its connections and event loops, against
/// a limit: past it a request is refused (503) instead of the worker's memory growing with every upload.
final class BodyBudget: Sendable {
    /// The most bytes held at once.
    let limit: Int
    private let held = Atomic<Int>(0)

    /// A budget of `limit` bytes.
    init(limit: Int) {
        self.limit = limit
    }

    /// Bytes held now.
    var current: Int { held.load(ordering: .relaxed) }

    /// Takes `bytes` from the budget; false (and nothing taken) when that would go past the limit.
    func reserve(_ bytes: Int) -> Bool {
        let total = held.add(bytes, ordering: .relaxed).newValue
        guard total > limit else { return true }
        held.subtract(bytes, ordering: .relaxed)
        return false
    }

    /// Gives back `bytes` taken by `reserve`.
    func release(_ bytes: Int) {
        held.subtract(bytes, ordering: .relaxed)
    }
}
