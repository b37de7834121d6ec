import Atomics
import Glibc

/// How many connections each worker holds, in a small file every worker maps into memory, so that a
/// worker far ahead of the others lets them accept the next connections.
///
/// A burst of connections (a client pool opening 64 at once) otherwise lands on whichever worker woke
/// first: measured 63/1 splits, which leave one core idle when each worker runs one event loop.
public final class WorkerLoadBoard: @unchecked Sendable {
    // Sendable: the mapping is fixed for the object's life and every access to it is atomic.
    private let base: UnsafeMutablePointer<UnsafeAtomic<UInt32>.Storage>
    private let slots: Int
    private static let size = 4096

    /// Why the board could not be opened.
    public typealias Failure = SharedMemoryFile.Failure

    /// Maps the board at `path` (created, mode 0600, when missing) with room for `slots` workers.
    public init(path: String, slots: Int) throws(Failure) {
        precondition(slots > 0 && slots * MemoryLayout<UInt32>.stride <= Self.size)
        base = try SharedMemoryFile.map(path: path, size: Self.size)
            .bindMemory(to: UnsafeAtomic<UInt32>.Storage.self, capacity: Self.size / 4)
        self.slots = slots
    }

    deinit {
        munmap(UnsafeMutableRawPointer(base), Self.size)
    }

    /// Publishes the connection count of worker `slot`.
    public func publish(_ connections: Int, slot: Int) {
        guard slot < slots else { return }
        UnsafeAtomic<UInt32>(at: base + slot).store(UInt32(clamping: connections), ordering: .relaxed)
    }

    /// The published connection count of worker `slot`.
    public func connections(slot: Int) -> Int {
        Int(UnsafeAtomic<UInt32>(at: base + slot).load(ordering: .relaxed))
    }

    /// True when worker `slot` holds more than `slack` connections more than the least loaded other one.
    public func isAhead(slot: Int, slack: Int = 2) -> Bool {
        guard slots > 1, slot < slots else { return false }
        let mine = connections(slot: slot)
        var least = Int.max
        for other in 0..<slots where other != slot { least = min(least, connections(slot: other)) }
        return mine > least + slack
    }
}
