import NIOCore
import Synchronization

/// The open connections of a server, so a graceful shutdown can ask each to finish its current request
/// and close (`ChannelShouldQuiesceEvent`, which Hummingbird's HTTP/1 handler honours).
///
/// A connection that has not begun a request yet is given a moment before it is closed: it was accepted
/// just now and its first request may already be on the wire, and dropping that would fail a client that
/// did nothing wrong. Idle keep-alive connections that already served requests are closed at once.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        let channel: any Channel
        var startedRequest = false
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var quiescing = false
    }

    private let state = Mutex(State())
    /// How long a fresh connection may take to send its first request once draining began.
    private let firstRequestGrace: TimeAmount = .seconds(1)

    /// Tracks `channel`.
    func insert(_ channel: any Channel) {
        let draining = state.withLock { state -> Bool in
            state.entries[ObjectIdentifier(channel)] = Entry(channel: channel)
            return state.quiescing
        }
        if draining { quiesceLater(channel) }
    }

    /// Stops tracking `channel`.
    func remove(_ channel: any Channel) {
        _ = state.withLock { $0.entries.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Called as each request starts: while draining, the connection closes once this answer is sent.
    func requestStarted(on channel: any Channel) {
        let draining = state.withLock { state -> Bool in
            state.entries[ObjectIdentifier(channel)]?.startedRequest = true
            return state.quiescing
        }
        if draining { Self.quiesce(channel) }
    }

    /// Asks every connection, now and later, to close once its in-flight request is answered.
    func quiesceAll() {
        let entries = state.withLock { state -> [Entry] in
            state.quiescing = true
            return Array(state.entries.values)
        }
        for entry in entries {
            if entry.startedRequest { Self.quiesce(entry.channel) } else { quiesceLater(entry.channel) }
        }
    }

    private func quiesceLater(_ channel: any Channel) {
        channel.eventLoop.scheduleTask(in: firstRequestGrace) { Self.quiesce(channel) }
    }

    private static func quiesce(_ channel: any Channel) {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
