import Crypto
import Foundation

/// Seals and opens upstream key values with AES-GCM under a key derived from `SECRET_KEY`.
public struct SecretBox: Sendable {
    private let key: SymmetricKey

    /// Why a sealed value could not be opened.
    public enum OpenError: Error, CustomStringConvertible {
        /// Not produced by `seal`, or damaged.
        case malformed
        /// Sealed under another secret.
        case wrongSecret

        public var description: String {
            switch self {
            case .malformed: return "sealed value is malformed"
            case .wrongSecret: return "sealed value does not open with this SECRET_KEY"
            }
        }
    }

    private static let prefix = "v1:"

    /// A box for `secret` (any length; HKDF-SHA256 stretches it to a 256-bit key).
    public init(secret: String) {
        key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(secret.utf8)),
            info: Data("openai-proxy upstream keys v1".utf8),
            outputByteCount: 32
        )
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    public func seal(_ plaintext: String) -> String {
        // AES.GCM.seal only throws for invalid nonces, and we let it pick a fresh random one.
        let box = try! AES.GCM.seal(Data(plaintext.utf8), using: key)
        return Self.prefix + box.combined!.base64EncodedString()
    }

    /// The plaintext of a value produced by `seal` under the same secret.
    public func open(_ sealed: String) throws(OpenError) -> String {
        guard sealed.hasPrefix(Self.prefix),
            let data = Data(base64Encoded: String(sealed.dropFirst(Self.prefix.count))),
            let box = try? AES.GCM.SealedBox(combined: data)
        else { throw .malformed }
        guard let plain = try? AES.GCM.open(box, using: key), let text = String(data: plain, encoding: .utf8) else {
            throw .wrongSecret
        }
        return text
    }
}
