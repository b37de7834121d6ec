import Logging
import ServiceLifecycle
import Shared

extension KeyHealthBoard: Service {
    /// A key-health change this worker learned, on its way to the database.
    struct HealthWrite: Sendable {
        let outcome: KeyOutcome
        let key: RoutableKey
        let token: Int64?
        let now: Int64
    }

    /// Writes the changes `report` queued to the database, one after another in the order reported. On
    /// graceful shutdown it takes no new ones and returns once those already queued are written, so a drain
    /// never loses a key-health mark: in the worker's group it stops after the server, whose draining requests
    /// still report.
    func run() async {
        await withGracefulShutdownHandler {
            for await write in writes { await self.save(write) }
        } onGracefulShutdown: {
            // Ends the loop once what is queued is taken; it is not cut short, unless the database is out of
            // reach.
            self.stopping.store(true, ordering: .relaxed)
            self.writeQueue.finish()
        }
    }

    /// Queues `write` for `run()`: no task per report, and cheap on an event loop.
    func enqueue(_ write: HealthWrite) {
        if case .terminated = writeQueue.yield(write) {
            // Only after the server drained: the change holds in this worker for a while, like a failed write.
            logger.warning(
                "key health not saved: the worker is stopping",
                metadata: ["key.id": "\(write.key.id)", "key.hint": "\(write.key.hint)"])
            settle(write, shownAt: nil, stored: nil)
        }
    }

    /// Writes one change. While the shared database is out of reach (its connection dropped, or the pool gave up
    /// connecting) the write is retried every `retryInterval`, and the changes after it wait in order, so a
    /// change learned in an outage reaches every host once the database is back; logged once each way. A
    /// worker that drains meanwhile gives the write up.
    private func save(_ write: HealthWrite) async {
        var failedAttempts = 0
        while true {
            do {
                let applied = try await store.record(
                    write.outcome, keyID: write.key.id, token: write.token, now: write.now)
                if failedAttempts > 0 {
                    logger.notice(
                        "key health saved once the database was back",
                        metadata: ["key.id": "\(write.key.id)", "attempts": "\(failedAttempts + 1)"])
                }
                settle(write, shownAt: applied?.generation, stored: applied?.health)
                return
            } catch  where PostgresProxyDatabase.isUnreachable(error) && !stopping.load(ordering: .relaxed) {
                if failedAttempts == 0 {
                    logger.warning(
                        "key health waits for the database: \(PostgresErrorText.line(error))",
                        metadata: ["key.id": "\(write.key.id)", "key.hint": "\(write.key.hint)"])
                }
                failedAttempts += 1
                try? await Task.sleep(for: Self.retryInterval)
            } catch {
                logger.warning(
                    "key health not saved: \(PostgresErrorText.line(error))",
                    metadata: ["key.id": "\(write.key.id)", "key.hint": "\(write.key.hint)"])
                settle(write, shownAt: nil, stored: nil)
                return
            }
        }
    }

    /// How often a write waiting for the database is tried again.
    static let retryInterval: Duration = .seconds(1)
}
