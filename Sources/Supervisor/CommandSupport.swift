import ArgumentParser
import Foundation
import KeyProbe
import Logging
import Shared

/// What every command shares: loading the configuration, opening the database, reporting errors in one line.
enum CommandSupport {
    /// The configuration, or exit 2 with one line naming the bad setting.
    static func loadConfiguration() throws -> ProxyConfiguration {
        do {
            return try ConfigurationLoader().load()
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
    }

    /// A logger for a command's PostgreSQL client: postgres-nio's own logging stays out of its output.
    static var quietLogger: Logger {
        var logger = Logger(label: "openai-proxy.command")
        logger.logLevel = .critical
        return logger
    }

    /// Opens the SQLite database for a management command that reads SQLite itself (`migrate --to`), creating and migrating it when missing; exits 1 with one line on PostgreSQL.
    static func openDatabase(_ configuration: ProxyConfiguration) throws -> ProxyDatabase {
        if case .postgresql(let location) = configuration.database {
            printError("this command works on the SQLite database only, not yet on PostgreSQL (\(location))")
            throw ExitCode.failure
        }
        do {
            try SecretMaterial.prepareDataDirectory(configuration)
            return try ProxyDatabase.open(at: configuration.paths.database, migrate: true)
        } catch {
            printError(error)
            throw ExitCode.failure
        }
    }

    /// Runs `body` with the stores of the configured database (either engine), created and migrated when
    /// missing; any failure becomes one line on stderr and exit code 1.
    static func withStores<T: Sendable>(
        _ configuration: ProxyConfiguration, _ body: (StoreSet) async throws -> T
    ) async throws -> T {
        try await reporting {
            try SecretMaterial.prepareDataDirectory(configuration)
            return try await StoreSet.withOpened(configuration, migrate: true, logger: quietLogger) {
                stores in try await body(stores)
            }
        }
    }

    /// Runs `body` with the key store (and the stores and secret it is over), creating the encryption secret
    /// when missing; refused when the secret is not the one the stored keys were sealed with (`SecretCheck`).
    static func withKeys<T: Sendable>(
        _ configuration: ProxyConfiguration, _ body: (any KeyStoring, StoreSet, SecretBox) async throws -> T
    ) async throws -> T {
        try await withStores(configuration) { stores in
            let box = try SecretMaterial.box(for: configuration, create: true)
            try await SecretCheck.verify(box, configuration: configuration, stores: stores)
            return try await body(stores.keys(box: box), stores, box)
        }
    }

    /// Probes stored keys against the configured upstream.
    static func probeRunner(_ configuration: ProxyConfiguration, _ stores: StoreSet, _ box: SecretBox) -> KeyProbeRunner
    {
        KeyProbeRunner(configuration: configuration, stores: stores, box: box, timeout: .seconds(5))
    }

    /// Runs `body`; a failure becomes one line on stderr and exit code 1.
    static func reporting<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError(error)
            throw ExitCode.failure
        }
    }

    /// A line on stdout, written at once (not held in stdio's buffer when stdout is a pipe).
    static func printLine(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// `openai-proxy: <message>` on stderr.
    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("openai-proxy: \(message)\n".utf8))
    }

    /// `error` as one line on stderr: a PostgreSQL server's error by its own message (`PostgresErrorText`).
    static func printError(_ error: any Error) {
        printError(PostgresErrorText.line(error))
    }

    /// Aligned columns for list commands.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// A timestamp for tables, or `-`.
    static func format(_ date: Date?) -> String {
        guard let date else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
