import Testing

@testable import Shared

/// `LeastUsedPicking` and the prober's reads of `KeyHealthStoring` on every engine.
@Suite("Least-used picks and probe reads")
struct LeastUsedAndProbeStoreTests {
    @Test(
        "least_used picks the least-picked key (ties to the lowest id) and counts the pick",
        arguments: StoreEngine.tested)
    func leastUsed(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            var ids: [Int64] = []
            for name in ["a", "b", "c"] {
                guard
                    case .added(let key) = try await stores.keys.add(
                        name: name, value: "sk-least-\(name)\(name)\(name)-0001", status: .active),
                    let id = key.id
                else { throw CancellationError() }
                ids.append(id)
            }
            var picks: [Int64] = []
            for _ in 0..<6 { picks.append(try #require(try await stores.leastUsed.pick(among: ids))) }
            #expect(picks == ids + ids)
            #expect(try await stores.leastUsed.pick(among: [ids[2], ids[1]]) == ids[1])
            #expect(try await stores.leastUsed.pick(among: [999]) == nil, "a key no longer stored")
        }
    }

    @Test(
        "the prober reads a key's sealed value and state, and the active keys whose models are unknown",
        arguments: StoreEngine.tested)
    func probeReads(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            guard
                case .added(let first) = try await stores.keys.add(
                    name: "a", value: "sk-probe-aaaaaaaa-0001", status: .active),
                case .added(let second) = try await stores.keys.add(
                    name: "b", value: "sk-probe-bbbbbbbb-0002", status: .disabled),
                let a = first.id, let b = second.id
            else { throw CancellationError() }
            let target = try #require(try await stores.health.probeTarget(keyID: a))
            #expect(try stores.box.open(target.sealed) == "sk-probe-aaaaaaaa-0001")
            #expect(target.status == .active)
            #expect(try await stores.health.probeTarget(keyID: b)?.status == .disabled)
            #expect(try await stores.health.probeTarget(keyID: 999) == nil)
            #expect(try await stores.health.keysWithoutModels(probedBefore: 0) == [a])
            try await stores.execute("UPDATE keys SET last_probe_at = 5000 WHERE id = \(a)")
            #expect(try await stores.health.keysWithoutModels(probedBefore: 4999) == [])
            #expect(try await stores.health.keysWithoutModels(probedBefore: 5000) == [a])
            try await stores.execute("UPDATE keys SET models_checked_at = 5000, models = '[]' WHERE id = \(a)")
            #expect(try await stores.health.keysWithoutModels(probedBefore: 9999) == [])
        }
    }
}
