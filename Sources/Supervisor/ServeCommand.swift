import ArgumentParser
import Foundation
import Logging
import ProcessSupervisor
import ServiceLifecycle
import Shared

/// `openai-proxy serve`: prepares the data directory and ports, then supervises every child process.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway: stats collector, admin server and proxy workers (the default command).",
        discussion: """
            Signals: SIGTERM/SIGINT drain in-flight requests (OPENAI_PROXY_DRAIN_TIMEOUT), then stop; \
            SIGHUP re-reads the configuration and replaces workers one at a time without refusing connections.
            """
    )

    func run() async throws {
        let configuration = try CommandSupport.loadConfiguration()
        LogLineHandler.bootstrap(role: "supervisor", format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: "openai-proxy")
        // Before any child starts, so every worker inherits room for its connections.
        if let limit = OpenFileLimit.raiseToHard() {
            logger.info(
                "open-file limit \(limit.after)",
                metadata: ["soft.before": "\(limit.before)", "soft": "\(limit.after)", "hard": "\(limit.hard)"])
        } else {
            logger.warning("could not read the open-file limit (RLIMIT_NOFILE)")
        }
        if case .postgresql = configuration.database {
            // Before any secret or the admin token is created: a start that cannot reach or migrate its database
            // creates nothing (an admin token made now would never be shown). Every host's supervisor migrates,
            // one at a time under the migration lock, and refuses a schema newer than it knows.
            do {
                try await StoreSet.withOpened(configuration, migrate: true, logger: logger) { _ in }
            } catch {
                CommandSupport.printError(error)
                throw ExitCode.failure
            }
        }
        let prepared: Startup.Prepared
        do {
            prepared = try Startup.prepare(configuration)
        } catch {
            CommandSupport.printError(error.description)
            throw ExitCode.failure
        }
        do {
            try await SecretCheck.verify(
                SecretMaterial.box(for: configuration, create: false), configuration: configuration)
        } catch {
            CommandSupport.printError(error)
            throw ExitCode.failure
        }
        if let token = prepared.generatedAdminToken {
            CommandSupport.printLine("Admin token (shown once; saved in \(configuration.paths.adminToken)):\n\(token)")
        }
        for change in prepared.tightenedModes {
            logger.notice("data directory permissions tightened: \(change)")
        }
        let supervisor = Supervisor(
            configuration: configuration, sockets: prepared.sockets, executable: Self.executablePath(),
            environment: ProcessInfo.processInfo.environment,
            reloadConfiguration: { try ConfigurationLoader().load() }, logger: logger,
            onReady: { summary in
                CommandSupport.printLine("openai-proxy ready: \(summary)")
            })
        let group = ServiceGroup(
            configuration: .init(services: [supervisor], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            CommandSupport.printError(error)
            throw ExitCode.failure
        }
    }

    /// This binary's own path, to re-execute it for each child role.
    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
