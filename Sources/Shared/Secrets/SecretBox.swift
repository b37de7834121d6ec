import Crypto
import Foundation
import Synchronization

/// Seals and opens upstream key values with AES-GCM under keys derived from secrets (`SECRET_KEY`).
///
/// A box holds a ring of secrets, newest first: it seals with the newest and opens with any. A box made by
/// ``SecretMaterial/box(for:create:)`` from the data directory's secret files reloads them when a value
/// does not open and before it seals, so every running process follows `openai-proxy rotate-secret`
/// without a restart (see ``SecretRotation``).
public struct SecretBox: Sendable {
    private let ring: Keyring

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
        self.init(secrets: [secret])
    }

    /// A box that seals with `secrets[0]` and opens with any of `secrets`.
    public init(secrets: [String]) {
        precondition(!secrets.isEmpty, "a secret box needs a secret")
        ring = Keyring(keys: secrets.map(Self.derive), reload: nil)
    }

    /// A box whose secrets come from `load` (newest first), called now and again when a value does not open
    /// or before sealing; a nil or empty answer keeps the secrets it had.
    init(loading load: @escaping @Sendable () -> [String]?) throws(SecretFile.Failure) {
        guard let secrets = load(), !secrets.isEmpty else {
            throw SecretFile.Failure(description: "no encryption secret found")
        }
        ring = Keyring(keys: secrets.map(Self.derive), reload: { load().map { $0.map(Self.derive) } })
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag), under the newest secret.
    public func seal(_ plaintext: String) -> String {
        // AES.GCM.seal only throws for invalid nonces, and we let it pick a fresh random one.
        let box = try! AES.GCM.seal(Data(plaintext.utf8), using: ring.newest())
        return Self.prefix + box.combined!.base64EncodedString()
    }

    /// The plaintext of a value produced by `seal` under one of the box's secrets.
    public func open(_ sealed: String) throws(OpenError) -> String {
        try openReporting(sealed).plaintext
    }

    /// The plaintext of `sealed` and whether it was sealed under the newest secret (else it should be sealed
    /// again).
    public func openReporting(_ sealed: String) throws(OpenError) -> (plaintext: String, sealedUnderNewest: Bool) {
        guard sealed.hasPrefix(Self.prefix),
            let data = Data(base64Encoded: String(sealed.dropFirst(Self.prefix.count))),
            let box = try? AES.GCM.SealedBox(combined: data)
        else { throw .malformed }
        guard let (plain, index) = ring.open(box), let text = String(data: plain, encoding: .utf8) else {
            throw .wrongSecret
        }
        return (text, index == 0)
    }

    private static func derive(_ secret: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(secret.utf8)),
            info: Data("openai-proxy upstream keys v1".utf8),
            outputByteCount: 32
        )
    }

    /// The derived keys, newest first, and how to load them again.
    private final class Keyring: Sendable {
        private let keys: Mutex<[SymmetricKey]>
        private let reload: (@Sendable () -> [SymmetricKey]?)?

        init(keys: [SymmetricKey], reload: (@Sendable () -> [SymmetricKey]?)?) {
            self.keys = Mutex(keys)
            self.reload = reload
        }

        /// The key to seal with: reloaded first, as a rotation may have begun since the last look (sealing is
        /// rare — a key added or changed — and reading two small files is cheap).
        func newest() -> SymmetricKey {
            refresh()
            return keys.withLock { $0[0] }
        }

        /// The plaintext and the index of the key that opened `box`; reloads once when none does.
        func open(_ box: AES.GCM.SealedBox) -> (Data, Int)? {
            if let opened = attempt(box) { return opened }
            guard reload != nil, refresh() else { return nil }
            return attempt(box)
        }

        private func attempt(_ box: AES.GCM.SealedBox) -> (Data, Int)? {
            for (index, key) in keys.withLock({ $0 }).enumerated() {
                if let plain = try? AES.GCM.open(box, using: key) { return (plain, index) }
            }
            return nil
        }

        /// Loads the keys again; true when they changed.
        @discardableResult
        private func refresh() -> Bool {
            guard let reload, let loaded = reload(), !loaded.isEmpty else { return false }
            return keys.withLock { current in
                let changed =
                    loaded.count != current.count
                    || zip(loaded, current).contains { a, b in
                        !a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
                    }
                current = loaded
                return changed
            }
        }
    }
}
