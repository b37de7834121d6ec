import NIOCore
import Synchronization

/// The open connections of a server, so a graceful shutdown can ask each to finish its current request
/// and close (`ChannelShouldQuiesceEvent`, which Hummingbird's HTTP/1 handler honours).
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
    }

    private let state = Mutex(State())

    /// Tracks `channel`; one registered after shutdown began is asked to quiesce at once.
    func insert(_ channel: any Channel) {
        let quiesceNow = state.withLock { state -> Bool in
            state.channels[ObjectIdentifier(channel)] = channel
            return state.quiescing
        }
        if quiesceNow { Self.quiesce(channel) }
    }

    /// Stops tracking `channel`.
    func remove(_ channel: any Channel) {
        _ = state.withLock { $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Asks every connection, now and later, to close once its in-flight request is answered.
    func quiesceAll() {
        let channels = state.withLock { state -> [any Channel] in
            state.quiescing = true
            return Array(state.channels.values)
        }
        channels.forEach(Self.quiesce)
    }

    private static func quiesce(_ channel: any Channel) {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
