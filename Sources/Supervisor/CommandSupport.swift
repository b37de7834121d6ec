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

    /// Exits 1 with one line when the configured database cannot be served yet (PostgreSQL).
    static func requireServable(_ configuration: ProxyConfiguration) throws {
        do {
            try configuration.database.requireServable()
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
    }

    /// A logger for a command's PostgreSQL client: postgres-nio's own logging stays out of its output.
    static var quietLogger: Logger {
        var logger = Logger(label: "openai-proxy.command")
        logger.logLevel = .critical
        return logger
    }

    /// Opens the database for a management command, creating and migrating it when missing.
    static func openDatabase(_ configuration: ProxyConfiguration) throws -> ProxyDatabase {
        try requireServable(configuration)
        do {
            try SecretMaterial.prepareDataDirectory(configuration)
            return try ProxyDatabase.open(at: configuration.paths.database, migrate: true)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }

    /// The key store, creating the encryption secret when missing; refused when the secret is not the one the
    /// stored keys were sealed with (`SecretCheck`).
    static func keyStore(_ configuration: ProxyConfiguration) async throws -> KeyStore {
        let database = try openDatabase(configuration)
        do {
            let box = try SecretMaterial.box(for: configuration, create: true)
            try await SecretCheck.verify(box, configuration: configuration, database: database)
            return KeyStore(database: database, box: box)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }

    /// Probes stored keys against the configured upstream.
    static func probeRunner(_ configuration: ProxyConfiguration, _ keys: KeyStore) -> KeyProbeRunner {
        KeyProbeRunner(configuration: configuration, database: keys.database, box: keys.box, timeout: .seconds(5))
    }

    /// Runs `body`; a failure becomes one line on stderr and exit code 1.
    static func reporting<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("\(error)")
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
