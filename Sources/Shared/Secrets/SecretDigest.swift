import Crypto
import Foundation

/// One-way digests and display hints for secrets that must never be shown or stored in the clear.
public enum SecretDigest {
    /// Lowercase hex SHA-256 of `text`: how client tokens are stored and upstream keys are de-duplicated.
    public static func sha256Hex(_ text: String) -> String {
        hex(SHA256.hash(data: Data(text.utf8)))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lowercase hex of `bytes`.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in bytes {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// A masked hint such as `sk-…wxyz`: at most the first 3 and the last 4 characters, never 8 in a row.
    public static func hint(_ secret: String) -> String {
        guard secret.count >= 12 else { return "…" + String(secret.suffix(min(2, secret.count / 4))) }
        return String(secret.prefix(3)) + "…" + String(secret.suffix(4))
    }

    /// Compares two strings in time independent of where they differ.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}
