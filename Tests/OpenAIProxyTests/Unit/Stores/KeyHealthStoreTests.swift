import Foundation
import Testing

@testable import Shared

/// `KeyHealthStoring` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Key health store")
struct KeyHealthStoreTests {
    private static let now: Int64 = 1_700_000_000_000

    private static func addKey(_ stores: EngineStores, _ value: String) async throws -> Int64 {
        guard case .added(let key) = try await stores.keys.add(name: "k", value: value, status: .active),
            let id = key.id
        else { throw InputError(field: "key", message: "not added") }
        return id
    }

    @Test(
        "transient failures cool a key at the threshold with one event; it returns when its time is up",
        arguments: StoreEngine.tested)
    func coolAndRelease(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let id = try await Self.addKey(stores, "sk-health-0000000001")
            let failure = KeyOutcome.transient(status: 503, reason: "503")
            let first = try #require(try await stores.health.record(failure, keyID: id, token: nil, now: Self.now))
            #expect(first.transition == nil && first.health.consecutiveFailures == 1)
            _ = try await stores.health.record(failure, keyID: id, token: nil, now: Self.now)
            let cooled = try #require(try await stores.health.record(failure, keyID: id, token: nil, now: Self.now))
            #expect(cooled.transition?.to == .cooling && cooled.health.status == .cooling)
            #expect(cooled.generation == (try await stores.generation()))
            let until = try #require(cooled.health.nextProbeAt)
            #expect(try await stores.health.nextDueTime() == until)
            #expect(try await stores.health.releaseCooledKeys(now: until - 1) == 0)
            #expect(try await stores.health.releaseCooledKeys(now: until) == 1)
            let key = try #require(try await stores.keys.key(id: id))
            #expect(key.status == .active && key.coolingLevel == 1 && key.consecutiveFailures == 3)
            #expect(try await stores.keyEvents().map(\.to) == ["cooling", "active"])
            #expect(try await stores.health.nextDueTime() == nil)
            #expect(try await stores.health.record(.success, keyID: id + 100, token: nil, now: Self.now) == nil)
        }
    }

    @Test(
        "a refusal marks the key for its token; the token's next refusal of another key marks nothing",
        arguments: StoreEngine.tested)
    func refusalMarks(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let first = try await Self.addKey(stores, "sk-health-0000000001")
            let second = try await Self.addKey(stores, "sk-health-0000000002")
            let refused = KeyOutcome.refused(status: 401, message: "bad key")
            let marked = try #require(try await stores.health.record(refused, keyID: first, token: 7, now: Self.now))
            #expect(marked.health.status == .invalid && marked.health.markedByToken == 7)
            let spared = try #require(try await stores.health.record(refused, keyID: second, token: 7, now: Self.now))
            #expect(spared.transition == nil && spared.health.status == .active)
            let other = try #require(try await stores.health.record(refused, keyID: second, token: 8, now: Self.now))
            #expect(other.health.status == .invalid && other.health.markedByToken == 8)
            #expect(try await stores.integer("SELECT marked_by_token FROM keys WHERE id = \(first)") == 7)
            #expect(try await stores.health.keysDueForProbe(now: Self.now) == [])
            let due = try #require(marked.health.nextProbeAt)
            #expect(try await stores.health.keysDueForProbe(now: due) == [first, second])
        }
    }

    @Test("refusals of one token's requests on many keys at once mark exactly one key", arguments: StoreEngine.tested)
    func concurrentRefusals(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            var ids: [Int64] = []
            for index in 0..<8 { ids.append(try await Self.addKey(stores, "sk-concurrent-00000000\(index)")) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in ids {
                    group.addTask {
                        _ = try await stores.health.record(
                            .refused(status: 401, message: "bad key"), keyID: id, token: 7, now: Self.now)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await stores.integer("SELECT COUNT(*) FROM keys WHERE marked_by_token = 7") == 1)
            #expect(try await stores.integer("SELECT COUNT(*) FROM keys WHERE status = 'invalid'") == 1)
        }
    }

    @Test(
        "a probe stores its figures and the models it reached, sorted once each, and moves the key",
        arguments: StoreEngine.tested)
    func probe(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let id = try await Self.addKey(stores, "sk-health-0000000001")
            _ = try await stores.health.record(
                .quotaExhausted(message: "no credit"), keyID: id, token: nil, now: Self.now)
            let record = KeyHealthStore.ProbeRecord(
                outcome: .success, status: 200, latencyMs: 12.5, models: ["o3", "gpt-4o", "o3"], error: nil)
            let applied = try #require(try await stores.health.recordProbe(record, keyID: id, now: Self.now + 5))
            #expect(applied.health.status == .active)
            let key = try #require(try await stores.keys.key(id: id))
            #expect(key.models == ["gpt-4o", "o3"] && key.modelsCheckedAt == Self.now + 5)
            #expect(key.lastProbeAt == Self.now + 5 && key.lastProbeStatus == 200 && key.lastProbeLatencyMs == 12.5)
            let failed = KeyHealthStore.ProbeRecord(
                outcome: .transient(status: nil, reason: "timeout"), status: 0, latencyMs: 5000, models: nil,
                error: "timeout")
            _ = try await stores.health.recordProbe(failed, keyID: id, now: Self.now + 9)
            let after = try #require(try await stores.keys.key(id: id))
            #expect(
                after.models == ["gpt-4o", "o3"] && after.lastProbeError == "timeout" && after.lastProbeStatus == 0)
            #expect(try await stores.keyEvents().map(\.to) == ["quota_exhausted", "active"])
        }
    }

    @Test("rate-limit figures: the newest observation wins, read back since a time", arguments: StoreEngine.tested)
    func rateLimits(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let id = try await Self.addKey(stores, "sk-health-0000000001")
            let newer = RateLimitState(
                remainingRequests: 5, remainingTokens: 1000, resetRequestsAt: 10, resetTokensAt: nil, observedAt: 200)
            let older = RateLimitState(
                remainingRequests: 9, remainingTokens: nil, resetRequestsAt: nil, resetTokensAt: nil, observedAt: 100)
            let before = try await stores.generation()
            try await stores.health.saveRateLimits([id: newer])
            try await stores.health.saveRateLimits([id: older])
            #expect(try await stores.health.rateLimits(since: 0) == [id: newer])
            #expect(try await stores.health.rateLimits(since: 200) == [:])
            #expect(try await stores.generation() == before)
        }
    }
}
