import Synchronization

/// A worker's supply of round-robin positions, leased from the shared cursor in blocks sized to its request rate.
///
/// Light traffic leases one position per request, so keys are used in strict turn across workers. Heavy traffic
/// leases blocks that are a multiple of the key count, so a fully used block gives every key the same share and
/// a partly used one at most one extra use per key; the cursor write then happens about `leasesPerSecond`
/// times a second instead of once per request. A block is prefetched before the last one runs out, by
/// `prefetch()`, which the worker runs as a service; without it, blocks are leased when they are needed.
/// With a `reachability` (PostgreSQL), a lease is bounded: while the database is out of reach positions come
/// from a cursor of this worker's own, so rotation goes on per worker and no request waits.
public final class PositionLease: Sendable {
    private let cursor: any RotationCursorLeasing
    /// The shared database's reach, when it is PostgreSQL.
    public let reachability: DatabaseReachability?
    private let leasesPerSecond: Double
    private let maximumBlock: Int
    private let state = Mutex(State())
    private let prefetches: AsyncStream<Int>
    private let prefetchQueue: AsyncStream<Int>.Continuation

    private struct State {
        var blocks: [Range<Int64>] = []
        var prefetching = false
        var windowStart = ContinuousClock.now
        var windowPicks = 0
        var rate: Double = 0
        // Started at random so that the workers' own cursors do not all begin on the same key.
        var local = Int64.random(in: 0..<(1 << 40))

        /// The next position of this worker's own cursor, for while the database is out of reach.
        mutating func nextLocal() -> Int64 {
            local &+= 1
            return local
        }

        mutating func pop() -> Int64? {
            while let first = blocks.first {
                if first.isEmpty {
                    blocks.removeFirst()
                    continue
                }
                blocks[0] = (first.lowerBound + 1)..<first.upperBound
                return first.lowerBound
            }
            return nil
        }

        var remaining: Int64 { blocks.reduce(0) { $0 + Int64($1.count) } }

        /// Closes the rate window when it is due; picks are counted with `windowPicks += 1`.
        mutating func updateRate(at now: ContinuousClock.Instant) {
            let elapsed = now - windowStart
            if elapsed >= .milliseconds(250) {
                rate = Double(windowPicks) / elapsed.inSeconds
                windowPicks = 0
                windowStart = now
            }
        }

        /// Once traffic is light again (blocks of 1), positions left from a busier time are given up, so
        /// requests go back to strict turn across workers within `keyCount - 1` picks. Only a whole number
        /// of rounds is given up from each block (a contiguous run of `keyCount`-multiples), so every key
        /// loses the same number of turns: dropping never makes the shares uneven, however often it happens.
        mutating func dropLeftovers(blockSize: Int, keyCount: Int) {
            guard blockSize == 1, !blocks.isEmpty, keyCount > 0 else { return }
            blocks = blocks.compactMap { block in
                let kept = Int64(block.count % keyCount)
                return kept == 0 ? nil : block.lowerBound..<(block.lowerBound + kept)
            }
        }
    }

    /// A lease over `cursor` aiming at about `leasesPerSecond` cursor writes a second under load; with
    /// `reachability`, leases are bounded by it and fall back to this worker's own cursor.
    public init(
        cursor: any RotationCursorLeasing, reachability: DatabaseReachability? = nil, leasesPerSecond: Double = 20,
        maximumBlock: Int = 4096
    ) {
        self.cursor = cursor
        self.reachability = reachability
        self.leasesPerSecond = leasesPerSecond
        self.maximumBlock = maximumBlock
        (prefetches, prefetchQueue) = AsyncStream.makeStream(of: Int.self)
    }

    /// The block size for the current rate: 1 when light, else a multiple of `keyCount`.
    static func blockSize(rate: Double, keyCount: Int, leasesPerSecond: Double, maximum: Int) -> Int {
        let wanted = Int(rate / leasesPerSecond)
        guard wanted > 1, keyCount > 0 else { return 1 }
        let rounded = ((wanted + keyCount - 1) / keyCount) * keyCount
        return min(rounded, max(keyCount, (maximum / keyCount) * keyCount))
    }

    /// The next position if one is already leased (the common case under load), without waiting; nil when
    /// a lease is needed first, and then `next` must be awaited.
    public func nextWithoutWaiting(keyCount: Int) -> Int64? {
        // Read before the lock, which event loops take: no clock call while holding it.
        let now = ContinuousClock.now
        let outage = reachability?.isUnreachable ?? false
        let step = state.withLock { state -> (Int64, prefetch: Int?)? in
            state.updateRate(at: now)
            let size = Self.blockSize(
                rate: state.rate, keyCount: keyCount, leasesPerSecond: leasesPerSecond, maximum: maximumBlock)
            state.dropLeftovers(blockSize: size, keyCount: keyCount)
            guard let position = state.pop() else {
                return outage ? (state.nextLocal(), nil) : nil
            }
            state.windowPicks += 1
            if size > 1, !state.prefetching, state.remaining < Int64(size / 2 + 1) {
                state.prefetching = true
                return (position, size)
            }
            return (position, nil)
        }
        guard let (position, prefetch) = step else { return nil }
        if let prefetch { startPrefetch(prefetch) }
        return position
    }

    /// The next position for this worker; `keyCount` sizes blocks so they divide evenly among keys.
    public func next(keyCount: Int) async throws -> Int64 {
        enum Step {
            case position(Int64, prefetch: Int?)
            case lease(Int)
        }
        let now = ContinuousClock.now
        let step = state.withLock { state -> Step in
            state.updateRate(at: now)
            state.windowPicks += 1
            let size = Self.blockSize(
                rate: state.rate, keyCount: keyCount, leasesPerSecond: leasesPerSecond, maximum: maximumBlock)
            state.dropLeftovers(blockSize: size, keyCount: keyCount)
            guard let position = state.pop() else { return .lease(size) }
            if size > 1, !state.prefetching, state.remaining < Int64(size / 2 + 1) {
                state.prefetching = true
                return .position(position, prefetch: size)
            }
            return .position(position, prefetch: nil)
        }
        switch step {
        case .position(let position, let prefetch):
            if let prefetch { startPrefetch(prefetch) }
            return position
        case .lease(let size):
            guard let reachability else {
                let block = try await cursor.lease(size)
                return state.withLock { state in
                    state.blocks.append(block)
                    return state.pop()!
                }
            }
            let cursor = self.cursor
            let block = await reachability.bounded { try await cursor.lease(size) }
            return state.withLock { state in
                guard let block else { return state.nextLocal() }
                state.blocks.append(block)
                return state.pop()!
            }
        }
    }

    /// The next position of this worker's own cursor, for a strategy whose database call was not answered.
    public func nextLocal() -> Int64 {
        state.withLock { $0.nextLocal() }
    }

    /// Whether a block asked for ahead of need is not leased yet.
    var isPrefetching: Bool { state.withLock { $0.prefetching } }

    /// Leases the blocks asked for ahead of need, one after another, until `stopPrefetching()`; the worker
    /// runs it as a service of its group, so no lease is left running outside it.
    public func prefetch() async {
        let cursor = self.cursor
        for await size in prefetches {
            let block: Range<Int64>? =
                if let reachability {
                    await reachability.bounded { try await cursor.lease(size) }
                } else {
                    try? await cursor.lease(size)
                }
            state.withLock { state in
                if let block { state.blocks.append(block) }
                state.prefetching = false
            }
        }
    }

    /// Ends `prefetch()` once the blocks already asked for are leased.
    public func stopPrefetching() {
        prefetchQueue.finish()
    }

    private func startPrefetch(_ size: Int) {
        if case .terminated = prefetchQueue.yield(size) {
            state.withLock { $0.prefetching = false }
        }
    }
}
