import NIOCore
import Shared

/// The settings a request runs under, resolved once when a routing snapshot loads (the configuration with
/// the live settings over it), so that a request reads them with its snapshot and never sees two
/// configurations.
struct RequestSettings: Sendable {
    /// The largest request body accepted.
    var maxBodyBytes: Int
    /// How long an attempt waits for the answer's head.
    var firstByteTimeout: TimeAmount
    /// The connect timeout set live; nil keeps the pool's configured one.
    var connectTimeout: TimeAmount?
    /// The key selector for the rotation strategy in force.
    var selector: KeySelector
    /// Upstream attempts per request, each on another key.
    var maxAttempts: Int

    /// These settings with what `live` overrides over them.
    func overridden(by live: LiveSettings?) -> RequestSettings {
        guard let live else { return self }
        var settings = self
        settings.maxBodyBytes = live.maxBodyBytes
        if live.rotationStrategy != selector.strategy {
            settings.selector = selector.with(strategy: live.rotationStrategy)
        }
        // A timeout not set live keeps the configuration's (which may be below a second).
        if live.overridden.contains(.firstByteTimeoutSeconds) {
            settings.firstByteTimeout = .seconds(Int64(live.firstByteTimeoutSeconds))
        }
        if live.overridden.contains(.upstreamConnectTimeoutSeconds) {
            settings.connectTimeout = .seconds(Int64(live.upstreamConnectTimeoutSeconds))
        }
        return settings
    }
}

/// What a request reads once, when its head arrives, and keeps to its end: the routing data and the
/// settings in force with it.
struct RequestSnapshot: Sendable {
    /// Keys, tokens and models.
    var routing: RoutingSnapshot
    /// The settings resolved for `routing`.
    var settings: RequestSettings
}
