import KeyProbe
import ServiceLifecycle

/// The runs of `POST /api/keys/test-all`, probed in the background as children of the admin server's service
/// group, eight probes at a time per run. On graceful shutdown no run and no probe starts any more; probes
/// in flight finish and are recorded, so none is cut half-way, and the service returns once they have.
final class BackgroundKeyTests: Service, Sendable {
    /// One test-all run: its id in `KeyTestRuns` and the keys to probe.
    struct Run: Sendable {
        let id: String
        let keys: [Int64]
    }

    private let probes: KeyProbeRunner
    private let runs: KeyTestRuns
    private let queued: AsyncStream<Run>
    private let queue: AsyncStream<Run>.Continuation

    /// Runs probed with `probes`, their progress kept in `runs`.
    init(probes: KeyProbeRunner, runs: KeyTestRuns) {
        self.probes = probes
        self.runs = runs
        (queued, queue) = AsyncStream.makeStream(of: Run.self)
    }

    /// Starts `run` in the background; false when the server is shutting down and starts none.
    func start(_ run: Run) -> Bool {
        if case .terminated = queue.yield(run) { return false }
        return true
    }

    /// Probes the runs started, each as a child task, until a graceful shutdown and the probes in flight end.
    func run() async {
        await withDiscardingTaskGroup { running in
            await withGracefulShutdownHandler {
                for await run in queued { running.addTask { await self.probeAll(run) } }
            } onGracefulShutdown: {
                self.queue.finish()
            }
        }
    }

    private func probeAll(_ run: Run) async {
        let probes = probes
        let runs = runs
        await withTaskGroup(of: Void.self) { group in
            var pending = run.keys[...]
            // Eight probes at a time: quick for a large pool, gentle on the upstream.
            for _ in 0..<8 {
                guard let id = pending.popFirst() else { break }
                group.addTask { await KeyTestRoutes.probe(id, run: run.id, probes: probes, runs: runs) }
            }
            while await group.next() != nil {
                guard !Task.isShuttingDownGracefully, let id = pending.popFirst() else { continue }
                group.addTask { await KeyTestRoutes.probe(id, run: run.id, probes: probes, runs: runs) }
            }
        }
        await runs.finish(run.id)
    }
}
