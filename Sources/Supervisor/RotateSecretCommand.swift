import ArgumentParser
import Shared

/// `openai-proxy rotate-secret`: seals every stored upstream key under a new encryption secret while the
/// service runs (see ``SecretRotation``).
struct RotateSecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-secret",
        abstract: "Re-encrypt every stored upstream key under a new secret; the running service follows it.",
        discussion: """
            Without SECRET_KEY: generates a new DATA_DIR/secret.key, re-encrypts every key under it and removes \
            the old one; running processes pick it up without a restart. Back up the new secret.key with the \
            database. With SECRET_KEY: set the new secret as SECRET_KEY and the old one as SECRET_KEY_PREVIOUS, \
            restart the service, run this, then remove SECRET_KEY_PREVIOUS. On PostgreSQL (several hosts) only \
            the second way: give every host both settings and restart each, run this once on any host, then \
            remove SECRET_KEY_PREVIOUS everywhere.
            """)

    func run() async throws {
        let configuration = try CommandSupport.loadConfiguration()
        let outcome = try await CommandSupport.withStores(configuration) { stores in
            try await SecretRotation.rotate(configuration: configuration, store: stores.secretCheck)
        }
        if outcome.wroteSecretFile {
            CommandSupport.printLine(
                "re-encrypted \(outcome.resealed) of \(outcome.keys) key(s) under a new secret in "
                    + "\(configuration.paths.secretKey); the running service uses it without a restart; "
                    + "back up the new secret.key with the database")
        } else {
            CommandSupport.printLine(
                "re-encrypted \(outcome.resealed) of \(outcome.keys) key(s) under SECRET_KEY; "
                    + "SECRET_KEY_PREVIOUS can be removed now")
        }
    }
}
