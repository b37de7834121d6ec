import Foundation
import Glibc

/// `openai-proxy rotate-secret`: seals every stored upstream key again under a new secret while the service
/// runs.
///
/// With the generated `secret.key` (no `SECRET_KEY`), in this order:
/// 1. the new secret is written to `secret.key.next` (kept and reused if a rotation was interrupted);
/// 2. one transaction opens every key with the old or the new secret and seals it under the new one;
/// 3. `secret.key.next` is renamed over `secret.key`: the old secret is gone;
/// 4. a second pass seals again what a process sealed under the old secret meanwhile.
/// Running processes need no signal: their boxes read `secret.key.next` and `secret.key` again when a value
/// does not open and before they seal (``SecretMaterial/box(for:create:)``), so from step 1 on new keys are
/// sealed under the new secret, and after step 2 every process opens the re-sealed values.
///
/// With `SECRET_KEY` set the running processes cannot learn a new value, so the operator sets the new
/// secret as `SECRET_KEY` and the old one as `SECRET_KEY_PREVIOUS` and restarts (keys open under either);
/// this then seals under `SECRET_KEY` every key still sealed under `SECRET_KEY_PREVIOUS`.
///
/// On PostgreSQL the hosts of a cluster share the stored keys but not a data directory, so only the second
/// way works there: each host gets both settings and a restart, then one `rotate-secret` seals every key
/// (in one transaction, rows locked) for all of them.
public enum SecretRotation {
    /// What a rotation did.
    public struct Outcome: Sendable, Equatable {
        /// Keys sealed again under the new secret.
        public let resealed: Int
        /// Keys stored.
        public let keys: Int
        /// Whether a new `secret.key` was written (false: `SECRET_KEY` from the configuration).
        public let wroteSecretFile: Bool
    }

    /// What one pass of sealing again did.
    public struct Pass: Sendable, Equatable {
        /// Keys sealed again under the newest secret.
        public var resealed: Int
        /// Keys stored.
        public var keys: Int
    }

    /// Why the rotation did not happen; nothing stored was changed.
    public struct Failure: Error, CustomStringConvertible {
        /// One line for the operator.
        public let description: String
    }

    /// Rotates the secret of `configuration`'s data directory, or re-seals under `SECRET_KEY`, the values of
    /// `store`'s database. On PostgreSQL only the latter: every host of the cluster must hold the new secret.
    public static func rotate(
        configuration: ProxyConfiguration, store: any SecretCheckStoring
    ) async throws
        -> Outcome
    {
        if let secret = configuration.secretKey {
            guard let previous = configuration.secretKeyPrevious else {
                throw Failure(
                    description: "SECRET_KEY is set by the configuration, so rotate-secret cannot replace it: "
                        + "set the new secret as SECRET_KEY and the current one as SECRET_KEY_PREVIOUS, restart the "
                        + "service (it opens keys under either), then run rotate-secret and remove SECRET_KEY_PREVIOUS")
            }
            let pass = try await store.reseal(under: SecretBox(secrets: [secret, previous]))
            return Outcome(resealed: pass.resealed, keys: pass.keys, wroteSecretFile: false)
        }
        if case .postgresql = configuration.database {
            throw Failure(
                description: "on PostgreSQL every host must open the keys with the same secret, so rotate-secret "
                    + "cannot write a new secret.key on this host alone: set the new secret as SECRET_KEY and the "
                    + "current one as SECRET_KEY_PREVIOUS on every host, restart them, then run rotate-secret once "
                    + "and remove SECRET_KEY_PREVIOUS")
        }
        let paths = configuration.paths
        let lock = try exclusiveLock(paths.secretKeyLock)
        defer { close(lock) }
        guard let old = try SecretFile.read(paths.secretKey) else {
            throw Failure(description: "\(paths.secretKey) does not exist: nothing has been sealed yet")
        }
        let next = try SecretFile.loadOrCreate(at: paths.secretKeyNext) { SecretFile.randomToken() }.value
        let box = SecretBox(secrets: [next, old])
        let first = try await store.reseal(under: box)
        guard rename(paths.secretKeyNext, paths.secretKey) == 0 else {
            throw Failure(
                description: "cannot rename \(paths.secretKeyNext) to \(paths.secretKey): "
                    + "\(String(cString: strerror(errno))); keys are sealed under the new secret in the first, "
                    + "run rotate-secret again")
        }
        syncDirectory(paths.directory)
        let second = try await store.reseal(under: box)
        return Outcome(resealed: first.resealed + second.resealed, keys: second.keys, wroteSecretFile: true)
    }

    /// `value` sealed again under `box`'s newest secret; nil when it is sealed under it already. `key` names
    /// the value in the failure (nil: the secret check).
    static func resealed(_ value: String, key: Int64?, under box: SecretBox) throws(Failure) -> String? {
        let opened: (plaintext: String, sealedUnderNewest: Bool)
        do {
            opened = try box.openReporting(value)
        } catch {
            let what = key.map { "key \($0)" } ?? "the secret check"
            throw Failure(description: "\(what) does not open with the current secret (\(error)); nothing was changed")
        }
        return opened.sealedUnderNewest ? nil : box.seal(opened.plaintext)
    }

    /// An open descriptor holding an exclusive `flock` on `path`, or a failure when another rotation holds it.
    private static func exclusiveLock(_ path: String) throws -> Int32 {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw Failure(description: "another rotate-secret is running (\(path) is locked)")
        }
        return descriptor
    }

    /// Makes a rename in `directory` durable.
    private static func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
