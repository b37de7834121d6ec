import AdminServer
import ArgumentParser
import Foundation
import ProxyWorker
import Shared
import StatsCollector

/// The part every child role shares: configuration, logging, threads, tying its life to the supervisor's.
/// `loopThreads` sizes the event-loop group (which also runs every async task of the process).
private func prepareChild(
    role: String, loopThreads: (ProxyConfiguration) -> Int = { _ in 1 }
) throws
    -> ProxyConfiguration
{
    let environment = ProcessInfo.processInfo.environment
    ChildContract.dieWithSupervisor(environment: environment)
    let configuration = try CommandSupport.loadConfiguration()
    ProcessRuntime.adoptEventLoopExecutor(loopThreads: loopThreads(configuration))
    LogLineHandler.bootstrap(role: role, format: configuration.logFormat, level: configuration.logLevel)
    return configuration
}

/// The listening socket inherited from the supervisor.
private func inheritedListener() throws -> Int32 {
    guard ProcessInfo.processInfo.environment["LISTEN_FDS"] == "1" else {
        CommandSupport.printError(
            "no inherited listening socket (LISTEN_FDS=1); this role is started by `openai-proxy serve`")
        throw ExitCode.failure
    }
    return ChildContract.listenerDescriptor
}

private let signalReady: @Sendable () -> Void = {
    ChildContract.signalReady(environment: ProcessInfo.processInfo.environment)
}

/// `openai-proxy worker --index N`: a proxy worker (started by the supervisor).
struct WorkerRoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run one proxy worker (started by `serve`).", shouldDisplay: false)

    @Option(help: "Worker number, from 0.") var index: Int

    func run() async throws {
        let configuration = try prepareChild(
            role: "worker.\(index)", loopThreads: ProcessRuntime.loopThreadsPerWorker)
        let listener = try inheritedListener()
        try await CommandSupport.reporting {
            try await ProxyWorker.run(
                configuration: configuration, index: index, listener: listener, onServing: signalReady)
        }
    }
}

/// `openai-proxy admin`: the admin server (started by the supervisor).
struct AdminRoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "Run the admin server (started by `serve`).", shouldDisplay: false)

    func run() async throws {
        let configuration = try prepareChild(role: "admin")
        let listener = try inheritedListener()
        try await CommandSupport.reporting {
            try await AdminServer.run(configuration: configuration, listener: listener, onServing: signalReady)
        }
    }
}

/// `openai-proxy collector`: the stats collector (started by the supervisor).
struct CollectorRoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector", abstract: "Run the stats collector (started by `serve`).", shouldDisplay: false)

    func run() async throws {
        let configuration = try prepareChild(role: "collector")
        try await CommandSupport.reporting {
            try await StatsCollector.run(configuration: configuration, onServing: signalReady)
        }
    }
}
