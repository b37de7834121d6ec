/// Rendezvous (highest-random-weight) hashing: a value goes to the key that scores highest for it. Every
/// worker of every host gives a value the same key (the score depends only on the value's bytes and the key's
/// id), and a key that leaves moves only the values that were its own; the others keep their key.
public enum RendezvousHash {
    /// The key `value` goes to among `keys`; nil when there are none.
    public static func pick(_ value: String, from keys: [RoutableKey]) -> RoutableKey? {
        let base = fnv1a(value)
        var best: RoutableKey?
        var bestScore: UInt64 = 0
        for key in keys {
            let score = score(base, key.id)
            // Ties (astronomically rare) go to the lower id, so the choice never depends on the order of `keys`.
            if best == nil || score > bestScore || (score == bestScore && key.id < best!.id) {
                best = key
                bestScore = score
            }
        }
        return best
    }

    /// The score of a value (its hash) for the key with `id`.
    static func score(_ valueHash: UInt64, _ id: Int64) -> UInt64 {
        mix(valueHash ^ mix(UInt64(bitPattern: id) &+ 0x9E37_79B9_7F4A_7C15))
    }

    /// FNV-1a over the value's UTF-8 bytes: stable across processes, unlike `Hasher`, which is seeded per
    /// process.
    static func fnv1a(_ value: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in value.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// The splitmix64 finaliser: spreads FNV's weak low bits over the whole word.
    static func mix(_ input: UInt64) -> UInt64 {
        var z = input
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
