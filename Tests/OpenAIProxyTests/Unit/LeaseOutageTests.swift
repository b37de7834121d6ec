import Logging
import Synchronization
import Testing

@testable import Shared

@Suite("Rotation in a database outage")
struct LeaseOutageTests {
    /// A shared cursor whose database can be taken away: while down, a lease waits until it is cancelled, as
    /// postgres-nio's pool request does while the server cannot be reached.
    private final class OutageCursor: RotationCursorLeasing {
        let down = Mutex(false)
        let attempts = Mutex(0)
        private let position = Mutex<Int64>(0)

        func lease(_ count: Int) async throws -> Range<Int64> {
            attempts.withLock { $0 += 1 }
            if down.withLock({ $0 }) {
                try await Task.sleep(for: .seconds(3600))
            }
            return position.withLock { position in
                defer { position += Int64(count) }
                return position..<(position + Int64(count))
            }
        }
    }

    /// Keeps the messages logged, to count what an outage says.
    private final class LogLines: Sendable {
        let lines = Mutex<[String]>([])

        var logger: Logger {
            Logger(label: "test") { _ in Handler(lines: self) }
        }

        func count(_ text: String) -> Int {
            lines.withLock { $0.filter { $0.contains(text) }.count }
        }

        struct Handler: LogHandler {
            let lines: LogLines
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace

            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }

            func log(event: LogEvent) {
                lines.lines.withLock { $0.append("\(event.message)") }
            }
        }
    }

    private func keys(_ count: Int) -> [RoutableKey] {
        (1...count).map { RoutableKey(id: Int64($0), hint: "k\($0)", value: "value-\($0)") }
    }

    @Test(
        "a lease the database does not answer falls back to the worker's own cursor, in strict turn, and stops trying",
        .timeLimit(.minutes(1)))
    func outageFallsBackToLocalRotation() async throws {
        let cursor = OutageCursor()
        let log = LogLines()
        let reachability = DatabaseReachability(bound: .milliseconds(50), logger: log.logger)
        let lease = PositionLease(cursor: cursor, reachability: reachability)
        let selector = KeySelector(
            strategy: .roundRobin, lease: lease, leastUsed: NoLeastUsed())
        let candidates = keys(3)
        cursor.down.withLock { $0 = true }

        // The first pick meets the dead database; it returns once the bound passed, with a key.
        let first = try await selector.pick(from: candidates)
        #expect(first != nil)
        #expect(reachability.isUnreachable)
        #expect(cursor.attempts.withLock { $0 } == 1)

        // Once the outage is known, picks need no database and go round the keys in turn.
        var picked: [Int64] = []
        for _ in 0..<9 {
            guard case .key(let key) = selector.pickWithoutWaiting(from: candidates) else {
                Issue.record("a pick waited for the database in a known outage")
                return
            }
            picked.append(key.id)
        }
        for round in 0..<3 {
            #expect(Set(picked[(round * 3)..<(round * 3 + 3)]) == [1, 2, 3])
        }
        #expect(cursor.attempts.withLock { $0 } == 1)
        #expect(log.count("PostgreSQL unreachable: serving with what this worker knows") == 1)

        // The refresher read the database again: picks lease from it once more.
        cursor.down.withLock { $0 = false }
        reachability.markReachable()
        reachability.markReachable()
        #expect(selector.pickWithoutWaiting(from: candidates) == .needsDatabase)
        let leased = try await selector.pick(from: candidates)
        #expect(leased?.id == 1)
        #expect(cursor.attempts.withLock { $0 } == 2)
        #expect(log.count("PostgreSQL reachable again") == 1)
    }

    /// `least_used` counts whose database can be taken away: while down, a pick never ends, cancelled or not.
    private final class OutageLeastUsed: LeastUsedPicking {
        let down = Mutex(false)
        let picks = Mutex<[Int64: Int]>([:])

        func pick(among ids: [Int64]) async throws -> Int64? {
            if down.withLock({ $0 }) {
                await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
            }
            return picks.withLock { picks in
                let chosen = ids.min { (picks[$0] ?? 0, $0) < (picks[$1] ?? 0, $1) }
                if let chosen { picks[chosen, default: 0] += 1 }
                return chosen
            }
        }
    }

    @Test(
        "least_used: a pick the database does not answer falls back to the worker's own turn, then the counts again",
        .timeLimit(.minutes(1)))
    func leastUsedOutage() async throws {
        let counts = OutageLeastUsed()
        let log = LogLines()
        let reachability = DatabaseReachability(bound: .milliseconds(50), logger: log.logger)
        let selector = KeySelector(
            strategy: .leastUsed, lease: PositionLease(cursor: OutageCursor(), reachability: reachability),
            leastUsed: counts)
        let candidates = keys(3)
        #expect(try await selector.pick(from: candidates)?.id == 1)

        counts.down.withLock { $0 = true }
        // The first pick meets the dead database and returns at the bound, with a key; the next need no call.
        var picked: [Int64] = []
        for _ in 0..<6 {
            guard let key = try await selector.pick(from: candidates) else {
                Issue.record("no key picked")
                return
            }
            picked.append(key.id)
        }
        #expect(reachability.isUnreachable)
        #expect(Set(picked[1..<4]) == [1, 2, 3])
        #expect(log.count("PostgreSQL unreachable") == 1)

        counts.down.withLock { $0 = false }
        reachability.markReachable()
        #expect(try await selector.pick(from: candidates)?.id == 2)
    }

    @Test("a bounded call gives its result, or nil when it fails, and a second outage is logged once more")
    func boundedCalls() async {
        let log = LogLines()
        let reachability = DatabaseReachability(bound: .seconds(30), logger: log.logger)
        #expect(await reachability.bounded { 7 } == 7)
        #expect(!reachability.isUnreachable)
        struct Refused: Error {}
        #expect(await reachability.bounded { () throws -> Int in throw Refused() } == nil)
        #expect(reachability.isUnreachable)
        // Known: not tried again.
        let tried = Mutex(false)
        #expect(await reachability.bounded { tried.withLock { $0 = true } } == nil)
        #expect(!tried.withLock { $0 })
        reachability.markReachable()
        reachability.markUnreachable("again")
        reachability.markUnreachable("still")
        #expect(log.count("PostgreSQL unreachable") == 2)
        #expect(log.count("reachable again") == 1)
    }

    @Test("without a reachability (SQLite) a lease waits for its cursor as before")
    func withoutReachabilityLeaseWaits() async throws {
        let cursor = OutageCursor()
        let lease = PositionLease(cursor: cursor)
        #expect(try await lease.next(keyCount: 3) == 0)
        #expect(lease.nextWithoutWaiting(keyCount: 3) == nil)
    }

    private struct NoLeastUsed: LeastUsedPicking {
        func pick(among ids: [Int64]) async throws -> Int64? { ids.first }
    }
}
