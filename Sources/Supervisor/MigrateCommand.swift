import ArgumentParser
import Foundation
import Shared

/// `openai-proxy migrate --to postgresql://…`: copies this installation's SQLite database into an empty
/// PostgreSQL database and verifies the copy (see ``PostgresImport``).
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy this installation's SQLite database into an empty PostgreSQL database, and verify it.",
        discussion: """
            Keys stay encrypted (the PostgreSQL installation needs the same SECRET_KEY or secret.key), client \
            tokens stay hashed, statistics, logs and settings are kept. The copy is one transaction read from \
            one snapshot, verified table by table before it commits; the target must hold no data. Stop the \
            service first: rows it writes after the copy began are not copied. The password comes from the URL, \
            else PGPASSWORD.
            """)

    @Option(name: .customLong("to"), help: "The target, postgresql://user[:password]@host[:port]/database[?sslmode=…].")
    var target: String

    func run() async throws {
        let configuration = try CommandSupport.loadConfiguration()
        let location: PostgresLocation
        do throws(DatabaseURLError) {
            guard
                case .postgresql(let parsed) = try DatabaseLocation.parse(
                    target,
                    password: ProcessInfo.processInfo.environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 })
            else {
                throw DatabaseURLError("--to must be a postgresql:// or postgres:// URL")
            }
            location = parsed
        } catch {
            CommandSupport.printError("invalid --to: \(error.reason)")
            throw ExitCode(2)
        }
        guard configuration.database == .sqlite else {
            CommandSupport.printError(
                "migrate copies the SQLite database in \(configuration.dataDirectory); "
                    + "OPENAI_PROXY_DATABASE_URL names PostgreSQL already")
            throw ExitCode.failure
        }
        guard FileManager.default.fileExists(atPath: configuration.paths.database) else {
            CommandSupport.printError("no installation to copy: \(configuration.paths.database) does not exist")
            throw ExitCode.failure
        }
        let source = try CommandSupport.openDatabase(configuration)
        let report = try await CommandSupport.reporting {
            try await PostgresProxyDatabase.withRunning(location, logger: CommandSupport.quietLogger) { target in
                try await PostgresImport.copy(from: source, to: target)
            }
        }
        for table in report.tables {
            CommandSupport.printLine("\(table.name): \(table.rows) row(s)")
        }
        let rows = report.tables.reduce(0) { $0 + $1.rows }
        CommandSupport.printLine(
            "copied and verified \(rows) row(s) in \(report.tables.count) tables into \(location); the hosts that "
                + "serve from it need this installation's secret")
    }
}
