import Logging
import NIOCore
import ServiceLifecycle
import Shared
import Synchronization

/// Counts the requests a worker refuses before a token is known (missing or wrong token, unknown path)
/// and sends the counts to the collector once a second at most, as per-minute totals: a flood of them
/// costs one small record per minute and reason, not a request-log row each. The first refusal of each
/// reason in a minute is logged as a sample, with the client's address and the start of its path.
///
/// The records go through the usage sender (socket or spool, kept until acknowledged), and each carries
/// the minute's running total, so a record sent twice or out of order counts once.
final class RefusedRequests: Service, Sendable {
    /// How long counts gather before they are sent, by default: many refusals, one record.
    static let defaultSendDelay = Duration.seconds(1)
    /// The start of a path kept for the logged sample.
    static let samplePathBytes = 80

    private let tally: Mutex<RefusedTally>
    private let usage: UsageSender?
    private let sendDelay: Duration
    private let logger: Logger
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    /// Counts sent through `usage` (nil: counted and logged only, as with `OPENAI_PROXY_USAGE=off`),
    /// under the source name `source`, gathered for `sendDelay` after the first refusal.
    init(source: String, usage: UsageSender?, logger: Logger, sendDelay: Duration = defaultSendDelay) {
        tally = Mutex(RefusedTally(source: source))
        self.usage = usage
        self.sendDelay = sendDelay
        self.logger = logger
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Counts one refused request; called on the connection's event loop, costs one short lock.
    func refused(_ reason: RefusalReason, client: SocketAddress?, method: String, path: Substring) {
        // The clock is read before the lock, which every event loop takes.
        let now = WallClock.nowMs()
        let counted = tally.withLock { $0.count(reason, now: now) }
        if counted.becameDirty { ring.yield() }
        guard counted.sample else { return }
        let shown = UsageWire.truncated(String(path), bytes: Self.samplePathBytes)
        logger.notice(
            "request refused before authentication (first of this minute for this reason)",
            metadata: [
                "reason": "\(reason.rawValue)", "client": "\(client?.ipAddress ?? "unknown")",
                "method": "\(method)", "path": "\(shown)\(shown.utf8.count < path.utf8.count ? "…" : "")",
                "path.bytes": "\(path.utf8.count)",
            ])
    }

    /// Sends what was counted and not sent yet.
    func send() {
        let records = take(now: WallClock.nowMs())
        guard let usage else { return }
        for record in records { usage.record(record) }
    }

    /// The running totals counted since the last send, taken out of the tally (`send` and tests).
    func take(now: Int64) -> [RefusedCount] {
        tally.withLock { $0.drain(now: now) }
    }

    func run() async throws {
        // Woken by the first refusal after a send; the delay gathers the ones that follow into one record. A
        // graceful shutdown ends the delay at once: the drain does not wait for it.
        await withGracefulShutdownHandler {
            for await _ in doorbell {
                let delay = sendDelay
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                send()
            }
        } onGracefulShutdown: {
            self.ring.finish()
        }
        // Last out before the usage sender stops: what the final second counted.
        send()
    }
}
