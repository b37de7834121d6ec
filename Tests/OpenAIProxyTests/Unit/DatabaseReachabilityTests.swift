import Logging
import Synchronization
import Testing

@testable import Shared

@Suite("Database reachability and the health body")
struct DatabaseReachabilityTests {
    private let logger = Logger(label: "test")

    @Test("the health body says ok, or degraded with the database unreachable, and keeps the worker's field")
    func healthBody() {
        #expect(ServiceHealth.body(databaseUnreachable: false) == #"{"status":"ok"}"#)
        #expect(ServiceHealth.body(worker: 3, databaseUnreachable: false) == #"{"status":"ok","worker":3}"#)
        #expect(
            ServiceHealth.body(databaseUnreachable: true) == #"{"status":"degraded","database":"unreachable"}"#)
        #expect(
            ServiceHealth.body(worker: 0, databaseUnreachable: true)
                == #"{"status":"degraded","worker":0,"database":"unreachable"}"#)
    }

    @Test("a check marks both ways: an answer ends an outage, a failure or no answer in time starts one")
    func checkMarksBothWays() async {
        let reachability = DatabaseReachability(bound: .seconds(30), logger: logger)
        struct Refused: Error {}
        #expect(await reachability.check(within: .seconds(30)) { () throws -> Int in throw Refused() } == nil)
        #expect(reachability.isUnreachable)
        // Unlike a bounded call, a check is tried in a known outage.
        #expect(await reachability.check(within: .seconds(30)) { 5 } == 5)
        #expect(!reachability.isUnreachable)
        let waited = await reachability.check(within: .milliseconds(20)) {
            try await Task.sleep(for: .seconds(3600))
        }
        #expect(waited == nil)
        #expect(reachability.isUnreachable)
    }

    @Test("unlessOutage gives the outcome, nil at once in a known outage, and nil when one starts meanwhile")
    func unlessOutage() async throws {
        let reachability = DatabaseReachability(bound: .milliseconds(1), logger: logger)
        // Not bounded by `bound`: a slow answer is still an answer.
        let slow = await reachability.unlessOutage { () async throws -> Int in
            try await Task.sleep(for: .milliseconds(20))
            return 1
        }
        #expect(try slow?.get() == 1)
        struct Refused: Error {}
        let failed = await reachability.unlessOutage { () throws -> Int in throw Refused() }
        #expect(throws: Refused.self) { try failed?.get() }
        #expect(!reachability.isUnreachable)

        let (entered, signal) = AsyncStream.makeStream(of: Void.self)
        async let waiting = reachability.unlessOutage { () async throws -> Int in
            signal.yield()
            try await Task.sleep(for: .seconds(3600))
            return 2
        }
        var iterator = entered.makeAsyncIterator()
        _ = await iterator.next()
        reachability.markUnreachable("test")
        #expect(await waiting == nil)
        let tried = Mutex(false)
        #expect(await reachability.unlessOutage { tried.withLock { $0 = true } } == nil)
        #expect(!tried.withLock { $0 })
    }

    @Test("a task waiting for an outage is woken when it starts, at once when it is known, and by cancellation")
    func waitsForAnOutage() async {
        let reachability = DatabaseReachability(logger: logger)
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                signal.yield()
                await reachability.untilUnreachable()
            }
            var iterator = started.makeAsyncIterator()
            _ = await iterator.next()
            reachability.markUnreachable("test")
            await group.waitForAll()
        }
        // Known: returns at once.
        await reachability.untilUnreachable()
        reachability.markReachable()
        // With no outage, only cancellation ends the wait (this test would hang without it).
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await reachability.untilUnreachable() }
            group.cancelAll()
        }
        #expect(!reachability.isUnreachable)
    }
}
