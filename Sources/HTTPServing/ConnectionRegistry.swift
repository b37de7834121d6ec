import NIOCore
import Synchronization

/// The open connections of a server, so a graceful shutdown can ask each to finish its current request
/// and close (`ChannelShouldQuiesceEvent`, which Hummingbird's and NIO's HTTP/1 handlers honour).
///
/// A connection that has not begun a request yet is given a moment before it is asked: it was accepted
/// just now and its first request may already be on the wire, and dropping that would fail a client that
/// did nothing wrong. Idle keep-alive connections that already served requests are asked at once. Each
/// connection is asked once.
public final class ConnectionRegistry: Sendable {
    private struct Entry {
        let channel: any Channel
        var startedRequest = false
        var quiesced = false
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var quiescing = false
    }

    private let state = Mutex(State())
    /// How long a fresh connection may take to send its first request once draining began.
    private let firstRequestGrace: TimeAmount = .seconds(1)

    /// An empty registry.
    public init() {}

    /// Connections open now.
    public var count: Int { state.withLock { $0.entries.count } }

    /// Tracks `channel` until it closes.
    public func insert(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let draining = state.withLock { state -> Bool in
            state.entries[id] = Entry(channel: channel)
            return state.quiescing
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLock { $0.entries.removeValue(forKey: id) }
        }
        if draining { quiesceLater(channel) }
    }

    /// Called as a connection's first request starts: while draining, the connection closes once this answer is
    /// sent. Later requests need not call it: once a request started, `quiesceAll` asks the connection at once.
    public func requestStarted(on channel: any Channel) {
        let quiesceNow = state.withLock { state -> Bool in
            let id = ObjectIdentifier(channel)
            state.entries[id]?.startedRequest = true
            return state.quiescing && markQuiesced(id, in: &state)
        }
        if quiesceNow { Self.quiesce(channel) }
    }

    /// Asks every connection, now and later, to close once its in-flight request is answered.
    public func quiesceAll() {
        let (now, later) = state.withLock { state -> ([any Channel], [any Channel]) in
            state.quiescing = true
            var now: [any Channel] = []
            var later: [any Channel] = []
            for (id, entry) in state.entries {
                if entry.startedRequest {
                    if markQuiesced(id, in: &state) { now.append(entry.channel) }
                } else {
                    later.append(entry.channel)
                }
            }
            return (now, later)
        }
        now.forEach(Self.quiesce)
        later.forEach(quiesceLater)
    }

    /// Closes every open connection now, in-flight requests or not: the drain has run out of time. Each
    /// is told why first (`DrainDeadlineEvent`), so what it was serving can be recorded as cut by us.
    /// Returns how many were open.
    @discardableResult
    public func closeAll() -> Int {
        let channels = state.withLock { $0.entries.values.map(\.channel) }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(DrainDeadlineEvent())
            channel.close(promise: nil)
        }
        return channels.count
    }

    private func quiesceLater(_ channel: any Channel) {
        channel.eventLoop.scheduleTask(in: firstRequestGrace) {
            let first = self.state.withLock { self.markQuiesced(ObjectIdentifier(channel), in: &$0) }
            if first { Self.quiesce(channel) }
        }
    }

    /// Marks the entry quiesced; true if it was not before (and still exists).
    private func markQuiesced(_ id: ObjectIdentifier, in state: inout State) -> Bool {
        guard let entry = state.entries[id], !entry.quiesced else { return false }
        state.entries[id]?.quiesced = true
        return true
    }

    private static func quiesce(_ channel: any Channel) {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}

/// Fired on a connection just before the server closes it because the drain timeout ran out.
public struct DrainDeadlineEvent: Sendable {
    public init() {}
}
