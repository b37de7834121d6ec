import Dispatch
import EventWaiting
import Glibc
import Synchronization

/// The most client connections one process holds at once, and the count held against it. At the cap the
/// accepting thread waits for a connection to close (new ones queue in the kernel's listen backlog meanwhile),
/// so a flood of idle sockets cannot run the process out of file descriptors.
public final class ConnectionCap: Sendable {
    /// The most connections open at once.
    public let limit: Int
    private let open = Atomic<Int>(0)
    private let waiting = Atomic<Bool>(false)
    private let room = DispatchSemaphore(value: 0)
    /// Whether a drain waits for the count to reach zero, so a close takes the lock only then.
    private let drainWaiting = Atomic<Bool>(false)
    private let emptied = Mutex<[OneShot<Bool>]>([])

    /// A cap of `limit` connections (at least 1).
    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Connections accepted and not yet closed.
    public var current: Int { open.load(ordering: .sequentiallyConsistent) }

    /// Whether another connection may be accepted now.
    public var hasRoom: Bool { current < limit }

    /// Counts a connection accepted; returns the new count.
    @discardableResult
    public func opened() -> Int {
        open.add(1, ordering: .sequentiallyConsistent).newValue
    }

    /// Counts a connection closed, waking the accepting thread if it waits for room; returns the new count.
    @discardableResult
    public func closed() -> Int {
        let count = open.subtract(1, ordering: .sequentiallyConsistent).newValue
        // Only a waiter is signalled, so a close costs one atomic load when no one waits.
        if waiting.load(ordering: .sequentiallyConsistent), waiting.exchange(false, ordering: .sequentiallyConsistent) {
            room.signal()
        }
        if count == 0, drainWaiting.load(ordering: .sequentiallyConsistent) {
            let waiters = emptied.withLock { waiters in
                defer { waiters.removeAll() }
                return waiters
            }
            for waiter in waiters { waiter.deliver(true) }
        }
        return count
    }

    /// Waits until no connection is open (true) or `timeout` passes first (false); returns at once when none
    /// is. Woken by the close that brings the count to zero, not by polling it.
    public func waitUntilEmpty(timeout: Duration) async -> Bool {
        let empty = OneShot<Bool>()
        // The flag is set before the count is read, and `closed` lowers the count before it reads the flag:
        // whichever comes second sees the other, so the last close cannot slip by unseen.
        drainWaiting.store(true, ordering: .sequentiallyConsistent)
        let registered = emptied.withLock { waiters -> Bool in
            guard current > 0 else { return false }
            waiters.append(empty)
            return true
        }
        guard registered else { return true }
        let result = await empty.value(timeout: timeout, fallback: false)
        emptied.withLock { waiters in waiters.removeAll { $0 === empty } }
        return result
    }

    /// Blocks the calling thread until a connection closes, `wake()` is called or `bound` passes; returns at
    /// once when there is room. The caller checks `hasRoom` again after.
    public func waitForRoom(bound: DispatchTimeInterval) {
        waiting.store(true, ordering: .sequentiallyConsistent)
        // A close between the caller's check and the flag above would otherwise go unnoticed.
        if hasRoom {
            waiting.store(false, ordering: .sequentiallyConsistent)
            return
        }
        _ = room.wait(timeout: .now() + bound)
        waiting.store(false, ordering: .sequentiallyConsistent)
    }

    /// Wakes a thread blocked in `waitForRoom` (to notice that accepting stops).
    public func wake() {
        room.signal()
    }

    /// The default cap for a process allowed `openFileLimit` descriptors: each client connection may hold an
    /// upstream connection too, so half of them, less 128 for the database, logs, spool and sockets; at most
    /// 16,384, which bounds the memory idle connections take even under a limit of a million.
    public static func defaultLimit(openFileLimit: Int) -> Int {
        min(16_384, max(16, (openFileLimit - 128) / 2))
    }

    /// This process's soft limit on open files (`RLIMIT_NOFILE`), `Int.max` when unlimited.
    public static func openFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return limit.rlim_cur == rlim_t.max ? Int.max : Int(clamping: limit.rlim_cur)
    }
}
