import NIOCore

/// What a worker allows a client while it sends a request: time for the head, silence within the body, and
/// the worker's budget of request bodies held in memory (shared by its connections).
struct ClientLimits: Sendable {
    /// Time to send a request head, from accept or from the first byte of the next request on a kept-alive
    /// connection.
    var headerTimeout: TimeAmount = .seconds(60)
    /// A kept-alive connection that sends nothing for this long after its last answer ended is closed.
    var keepAliveTimeout: TimeAmount = .seconds(75)
    /// Longest silence within a request body.
    var bodyTimeout: TimeAmount = .seconds(60)
    /// The worker's request bodies held in memory.
    var bodyBudget = BodyBudget(limit: 256 << 20)
    /// A relayed WebSocket with no frame either way for this long is closed (code 1001).
    var webSocketIdleTimeout: TimeAmount = .seconds(600)
}
