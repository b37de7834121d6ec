import NIOCore
import NIOPosix

/// How a role process runs its threads.
public enum ProcessRuntime {
    /// Sizes NIO's event-loop group and makes it Swift Concurrency's global executor, so a request's
    /// async handler runs on the event loop that does its I/O instead of hopping to a separate thread
    /// pool and back for every await (measured: that hopping was most of a request's CPU). Call first
    /// thing in a role process, before any other concurrency work or NIO use.
    public static func adoptEventLoopExecutor(loopThreads: Int) {
        NIOSingletons.groupLoopCountSuggestion = max(1, loopThreads)
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Event loops for each worker: one when there are as many workers as cores (the default, as nginx
    /// runs), more when fewer workers share more cores.
    public static func loopThreadsPerWorker(_ configuration: ProxyConfiguration) -> Int {
        max(1, System.coreCount / configuration.workers)
    }
}
