import Testing

@testable import Shared

/// Rendezvous hashing of prompt cache keys over upstream keys.
@Suite("Rendezvous hashing")
struct RendezvousHashTests {
    static let keys = (1...3).map { RoutableKey(id: Int64($0), hint: "k\($0)", value: "sk-\($0)") }
    static let values = (0..<3000).map { "value-\($0)" }

    @Test("a value always gets the same key, whatever the order of the keys; no keys, no pick")
    func stable() {
        for value in Self.values.prefix(200) {
            let picked = RendezvousHash.pick(value, from: Self.keys)
            #expect(picked != nil)
            #expect(RendezvousHash.pick(value, from: Self.keys.reversed()) == picked)
            #expect(RendezvousHash.pick(value, from: [Self.keys[1], Self.keys[2], Self.keys[0]]) == picked)
        }
        #expect(RendezvousHash.pick("x", from: []) == nil)
        // Fixed across processes and builds (FNV-1a and splitmix64, no per-process seed).
        #expect(RendezvousHash.fnv1a("") == 0xcbf2_9ce4_8422_2325)
        #expect(RendezvousHash.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
    }

    @Test("values spread evenly over the keys")
    func spread() {
        var counts: [Int64: Int] = [:]
        for value in Self.values { counts[RendezvousHash.pick(value, from: Self.keys)!.id, default: 0] += 1 }
        // 1000 each on average; the hash is fixed, so this cannot flake.
        #expect(counts.count == 3)
        #expect(counts.values.allSatisfy { (900...1100).contains($0) }, "\(counts)")
    }

    @Test("a key that leaves moves only its own values; one that comes back takes back only those")
    func minimalMovement() {
        let remaining = [Self.keys[0], Self.keys[2]]
        var moved = 0
        for value in Self.values {
            let before = RendezvousHash.pick(value, from: Self.keys)!
            let after = RendezvousHash.pick(value, from: remaining)!
            if before.id == 2 {
                moved += 1
                #expect(after.id != 2)
            } else {
                #expect(after == before)
            }
        }
        #expect(moved > 0)
    }
}
