import Logging
import Synchronization
import Testing

@testable import Shared

/// `ClusterJobLock`: a cluster-wide job runs on one host at a time, and another takes it over when the holder's
/// session ends.
@Suite("Cluster job lock")
struct ClusterJobLockTests {
    /// What the jobs of a test did, in order.
    final class Events: Sendable {
        private let lines = Mutex<[String]>([])

        /// Notes that `line` happened.
        func add(_ line: String) { lines.withLock { $0.append(line) } }
        /// Everything noted, oldest first.
        var all: [String] { lines.withLock { $0 } }
        /// How often `line` was noted.
        func count(_ line: String) -> Int { all.filter { $0 == line }.count }
    }

    /// A job that says when it starts and when it is stopped, and otherwise runs until cancelled.
    static func job(_ name: String, _ events: Events) -> @Sendable () async throws -> Void {
        {
            events.add("\(name) started")
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                events.add("\(name) stopped")
                throw error
            }
        }
    }

    @Test("on SQLite the job simply runs", arguments: StoreEngine.tested.filter { $0 == .sqlite })
    func sqlite(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let lock = ClusterJobLock(stores: stores.storeSet, key: 42, name: "test")
            let ran = Events()
            try await lock.whileHeld(logger: Logger(label: "test")) { ran.add("ran") }
            #expect(ran.all == ["ran"])
        }
    }

    @Test(
        "one holder at a time; a waiting host takes over when the holder stops; a killed session stops the job",
        arguments: StoreEngine.tested.filter { $0 == .postgresql })
    func takeover(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let events = Events()
            let logger = Logger(label: "test.cluster")
            let first = ClusterJobLock(stores: stores.storeSet, key: 42, name: "test", retry: .milliseconds(50))
            let second = ClusterJobLock(stores: stores.storeSet, key: 42, name: "test", retry: .milliseconds(50))
            let hostA = Task { try await first.whileHeld(logger: logger, Self.job("A", events)) }
            #expect(await eventually { events.all == ["A started"] })
            let hostB = Task { try await second.whileHeld(logger: logger, Self.job("B", events)) }
            defer {
                hostA.cancel()
                hostB.cancel()
            }
            // B's session asks for the lock every 50 ms; the lock has one holder, A's.
            let holders = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = 42"
            #expect(await eventually { (try? await stores.integer(holders)) == 1 })
            #expect(events.all == ["A started"])

            hostA.cancel()
            #expect(await eventually { events.all == ["A started", "A stopped", "B started"] })

            // B's session is killed (as when its host dies or the server restarts): its job stops, and B (the only
            // one left) takes the lock again on a new session.
            let holder = try #require(
                try await stores.integer(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = 42"))
            try await stores.execute("SELECT pg_terminate_backend(\(holder))")
            #expect(await eventually { events.count("B started") == 2 })
            #expect(events.all == ["A started", "A stopped", "B started", "B stopped", "B started"])
        }
    }
}
