import ServiceLifecycle
import Shared

/// Runs the round-robin lease's prefetches as a service of the worker's group. On graceful shutdown it
/// takes no new ones and returns once the lease under way is written.
struct PositionPrefetcher: Service {
    let lease: PositionLease

    /// Leases the blocks asked for ahead, until a graceful shutdown and the lease under way end.
    func run() async {
        await withGracefulShutdownHandler {
            await lease.prefetch()
        } onGracefulShutdown: {
            lease.stopPrefetching()
        }
    }
}
