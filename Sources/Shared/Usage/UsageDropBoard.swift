import Atomics
import Glibc

/// How many usage rows each worker slot has dropped at the spool's cap, in a small file every worker maps
/// into memory and the admin server reads for `/metrics`. The counts live as long as the data directory,
/// so they only grow, across worker restarts too, as a Prometheus counter should.
public final class UsageDropBoard: @unchecked Sendable {
    // Sendable: the mapping is fixed for the object's life and every access to it is atomic.
    private let base: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>
    private static let size = 4096
    private static let slots = size / MemoryLayout<UInt64>.stride

    /// Maps the board at `path` (created, mode 0600, when missing).
    public init(path: String) throws(SharedMemoryFile.Failure) {
        base = try SharedMemoryFile.map(path: path, size: Self.size)
            .bindMemory(to: UnsafeAtomic<UInt64>.Storage.self, capacity: Self.slots)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(base), Self.size)
    }

    /// Counts `rows` more dropped rows for worker `slot`.
    public func add(_ rows: Int, slot: Int) {
        guard slot >= 0, slot < Self.slots else { return }
        UnsafeAtomic<UInt64>(at: base + slot).wrappingIncrement(by: UInt64(rows), ordering: .relaxed)
    }

    /// Rows dropped by every worker together.
    public var total: UInt64 {
        (0..<Self.slots).reduce(0) { $0 &+ UnsafeAtomic<UInt64>(at: base + $1).load(ordering: .relaxed) }
    }
}
