import Logging

/// Proof that a process holds the installation's secret: a constant sealed under it, stored beside the keys.
///
/// Every host and command that seals or opens keys must use the secret they were sealed with. Without this
/// check a start with another `SECRET_KEY` (a typo, a second host set up with its own) serves with keys it
/// cannot open, and a `keys add` under it leaves the pool sealed under two secrets. With it, that start is
/// refused with one line. The first start stores the check once the secret opens every stored key (an
/// installation from before the check is adopted); `rotate-secret` seals it again with the keys.
public enum SecretCheck {
    /// The sealed constant.
    static let plaintext = "openai-proxy secret check v1"

    /// The secret does not belong to this installation; nothing was stored.
    public struct Failure: Error, CustomStringConvertible {
        /// One line for the operator.
        public let description: String
    }

    /// Checks that `box` opens the stored check, or, before one is stored, every stored key, and then stores
    /// a check sealed under it. `source` names where the secret came from, for the failure's line.
    public static func verify(_ box: SecretBox, store: some SecretCheckStoring, source: String, now: Int64) async throws
    {
        if let stored = try await store.storedCheck() {
            try require(box, opens: stored, source: source)
            return
        }
        let keys = try await store.sealedKeyValues()
        let unopened = keys.filter { (try? box.open($0)) == nil }.count
        guard unopened == 0 else {
            throw Failure(
                description: "\(source) does not open \(unopened) of the \(keys.count) stored upstream key(s): it is "
                    + "not the secret they were sealed with; start with the installation's secret "
                    + "(every host of a cluster needs the same one)")
        }
        let stored = try await store.storeCheckIfAbsent(box.seal(plaintext), now: now)
        try require(box, opens: stored, source: source)
    }

    /// Checks `box` against the installation of `configuration` (`stores`, else its configured database, on
    /// either engine), naming the secret's source: what a start, a `keys` command and a reload each ask.
    public static func verify(_ box: SecretBox, configuration: ProxyConfiguration, stores: StoreSet? = nil) async throws
    {
        let source = source(of: configuration)
        if let stores {
            return try await verify(box, store: stores.secretCheck, source: source, now: WallClock.nowMs())
        }
        try await StoreSet.withOpened(configuration, migrate: false, logger: Logger(label: "openai-proxy")) { stores in
            try await verify(box, store: stores.secretCheck, source: source, now: WallClock.nowMs())
        }
    }

    /// Where the secret of `configuration` comes from, as the failure names it.
    public static func source(of configuration: ProxyConfiguration) -> String {
        configuration.secretKey != nil ? "SECRET_KEY" : "the secret in \(configuration.paths.secretKey)"
    }

    private static func require(_ box: SecretBox, opens stored: String, source: String) throws(Failure) {
        guard (try? box.open(stored)) == plaintext else {
            throw Failure(
                description: "\(source) is not this installation's secret (the keys in the database were sealed "
                    + "with another); start with the installation's secret (every host of a cluster needs the same "
                    + "one)")
        }
    }
}
