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
            // Ends the loop once what is queued is taken; it is not cut short.
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

    private func save(_ write: HealthWrite) async {
        do {
            let applied = try await store.record(write.outcome, keyID: write.key.id, token: write.token, now: write.now)
            settle(write, shownAt: applied?.generation, stored: applied?.health)
        } catch {
            logger.warning(
                "key health not saved: \(error)",
                metadata: ["key.id": "\(write.key.id)", "key.hint": "\(write.key.hint)"])
            settle(write, shownAt: nil, stored: nil)
        }
    }
}
