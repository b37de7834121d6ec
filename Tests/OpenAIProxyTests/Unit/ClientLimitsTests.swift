import Dispatch
import Foundation
import HTTPServing
import NIOCore
import NIOHTTP1
import ProcessSupervisor
import Testing

@testable import ProxyWorker
@testable import Shared

/// The worker's limits on clients as values: the body budget, the connection cap and their settings.
@Suite("Client limits")
struct ClientLimitsTests {
    @Test("the body budget refuses what would pass its limit, takes nothing then, and comes back to zero")
    func bodyBudget() {
        let budget = BodyBudget(limit: 1000)
        #expect(budget.reserve(600))
        #expect(budget.reserve(400))
        #expect(!budget.reserve(1))
        #expect(budget.current == 1000)
        budget.release(600)
        #expect(budget.reserve(500))
        #expect(!budget.reserve(101))
        budget.release(900)
        #expect(budget.current == 0)
    }

    @Test("the body budget stays exact under reservations from many threads at once")
    func bodyBudgetConcurrent() {
        let budget = BodyBudget(limit: 10_000)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 where budget.reserve(7) {
                budget.release(7)
            }
        }
        #expect(budget.current == 0)
    }

    @Test("the default connection cap is half the open-file limit less a reserve, within 16 and 16384")
    func defaultCap() {
        #expect(ConnectionCap.defaultLimit(openFileLimit: 1024) == 448)
        #expect(ConnectionCap.defaultLimit(openFileLimit: 20_000) == 9936)
        #expect(ConnectionCap.defaultLimit(openFileLimit: 1 << 20) == 16_384)
        #expect(ConnectionCap.defaultLimit(openFileLimit: Int.max) == 16_384)
        #expect(ConnectionCap.defaultLimit(openFileLimit: 64) == 16)
        #expect(ConnectionCap.openFileLimit() > 0)
    }

    @Test("raising the open-file limit sets the soft limit to the hard one, which the cap default then reads")
    func openFileLimit() throws {
        let change = try #require(OpenFileLimit.raiseToHard())
        #expect(change.after == change.hard && change.before <= change.after)
        #expect(ConnectionCap.openFileLimit() == change.after)
    }

    @Test("at the cap there is no room until a connection closes, and the close wakes a waiting thread")
    func capWakesOnClose() async {
        let cap = ConnectionCap(limit: 2)
        cap.opened()
        #expect(cap.hasRoom)
        cap.opened()
        #expect(!cap.hasRoom)
        let woke = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let waiter = Thread {
                // The bound is far above any scheduling delay: returning before it means the close woke us.
                let started = ContinuousClock.now
                cap.waitForRoom(bound: .seconds(60))
                continuation.resume(returning: cap.hasRoom && ContinuousClock.now - started < .seconds(60))
            }
            waiter.start()
            Thread.sleep(forTimeInterval: 0.05)
            cap.closed()
        }
        #expect(woke)
        #expect(cap.current == 1)
    }

    @Test("the new settings are read, `auto` included, and bad values are refused")
    func settings() throws {
        let defaults = try ConfigurationLoader(environment: [:], cores: 2).load()
        #expect(defaults.clientHeaderTimeout == .seconds(60) && defaults.clientBodyTimeout == .seconds(60))
        #expect(defaults.workerConnections == nil && defaults.bufferedBodyBytes == 256 << 20)
        let set = try ConfigurationLoader(
            environment: [
                "OPENAI_PROXY_CLIENT_HEADER_TIMEOUT": "2s", "OPENAI_PROXY_CLIENT_BODY_TIMEOUT": "1500ms",
                "OPENAI_PROXY_WORKER_CONNECTIONS": "4", "OPENAI_PROXY_BUFFERED_BODY_BYTES": "1MiB",
            ], cores: 2
        ).load()
        #expect(set.clientHeaderTimeout == .seconds(2) && set.clientBodyTimeout == .milliseconds(1500))
        #expect(set.workerConnections == 4 && set.bufferedBodyBytes == 1 << 20)
        let auto = try ConfigurationLoader(environment: ["OPENAI_PROXY_WORKER_CONNECTIONS": "auto"], cores: 2).load()
        #expect(auto.workerConnections == nil)
        for (name, value) in [
            ("OPENAI_PROXY_WORKER_CONNECTIONS", "0"), ("OPENAI_PROXY_WORKER_CONNECTIONS", "many"),
            ("OPENAI_PROXY_CLIENT_HEADER_TIMEOUT", "2h"), ("OPENAI_PROXY_BUFFERED_BODY_BYTES", "12"),
        ] {
            #expect(throws: ConfigurationError.self) { try ConfigurationLoader(environment: [name: value]).load() }
        }
    }
}
