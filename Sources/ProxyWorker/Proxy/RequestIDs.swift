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
        // Written in place, one allocation: `prefix + String(number, radix: 16)` made two strings, and the
        // generic radix conversion cost more than the rest of the id.
        let digits = max(1, (UInt64.bitWidth - number.leadingZeroBitCount + 3) / 4)
        var prefix = prefix
        return prefix.withUTF8 { head in
            String(unsafeUninitializedCapacity: head.count + digits) { buffer in
                _ = buffer.initialize(fromContentsOf: head)
                var rest = number
                for index in stride(from: head.count + digits - 1, through: head.count, by: -1) {
                    buffer[index] = Self.hexDigits.utf8Start[Int(rest & 0xf)]
                    rest >>= 4
                }
                return head.count + digits
            }
        }
    }

    private static let hexDigits: StaticString = "0123456789abcdef"
}
