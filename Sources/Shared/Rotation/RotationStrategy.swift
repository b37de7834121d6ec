/// How a worker picks an upstream key for a request.
public enum RotationStrategy: String, Sendable, CaseIterable {
    /// Keys in strict turn across every worker, through the shared cursor.
    case roundRobin = "round_robin"
    /// A uniformly random active key; writes nothing.
    case random
    /// The active key with the lowest shared pick count.
    case leastUsed = "least_used"
}
