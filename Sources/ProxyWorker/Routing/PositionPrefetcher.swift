import ServiceLifecycle
import Shared

/// Runs the round-robin lease's prefetches as a service of the worker's group. On graceful shutdown it
/// takes no new ones and returns once the lease under way is written.
struct PositionPrefetcher: Service {
    let lease: PositionLease

    func run() async {
        await withGracefulShutdownHandler {
            await lease.prefetch()
        } onGracefulShutdown: {
            lease.stopPrefetching()
        }
    }
}
