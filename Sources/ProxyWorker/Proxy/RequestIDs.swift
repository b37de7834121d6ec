import Shared
import Synchronization

/// Hands out request ids unique across workers and restarts: a random prefix drawn once per process and
/// a counter. (`UUID()` opened and read `/dev/urandom` on every call: three system calls per request.)
final class RequestIDs: Sendable {
    private let prefix: String
    private let counter = Atomic<UInt64>(0)

    init() {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<8).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        prefix = SecretDigest.hex(random) + "-"
    }

    /// The next id, such as `3f9a0c1d22b7e8f4-1a`.
    func next() -> String {
        let number = counter.add(1, ordering: .relaxed).newValue
        return prefix + String(number, radix: 16)
    }
}
