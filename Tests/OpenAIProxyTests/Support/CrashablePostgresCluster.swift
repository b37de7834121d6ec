import Foundation
import Logging

@testable import Shared

/// A throw-away PostgreSQL cluster of one test's own, which the test may crash (`pg_ctl stop -m immediate`)
/// and start again on the same directory and port: the shared cluster of `PostgresTestCluster` serves every
/// other suite and must stay up. Started by `scripts/pg-scratch.sh`, like that one.
final class CrashablePostgresCluster: Sendable {
    /// Its directory (data, socket, server log).
    let directory: String
    /// Its loopback port.
    let port: Int
    /// A database of the test's own in it, owned by the password-authenticated test role.
    let location: PostgresLocation

    /// Why the cluster could not be started.
    struct Failed: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts a cluster and creates one database in it.
    static func start() async throws -> CrashablePostgresCluster {
        let directory = "/tmp/op-pg-crash-\(getpid())-\(UInt32.random(in: .min ... .max))"
        let port = freePort()
        let output = directory + ".out"
        defer { unlink(output) }
        let status = PostgresTestCluster.runScript("start \(directory) \(port) >\(output) 2>&1")
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else { throw Failed(description: "scripts/pg-scratch.sh start failed: \(printed)") }
        do {
            var location = try PostgresLocation(parsing: printed.trimmingWhitespace())
            try await PostgresProxyDatabase.withRunning(location, logger: Logger(label: "test.postgres")) { database in
                try await database.connection { connection in
                    try await connection.query("CREATE DATABASE op_outage", logger: database.logger)
                }
            }
            location.database = "op_outage"
            return CrashablePostgresCluster(directory: directory, port: port, location: location)
        } catch {
            _ = PostgresTestCluster.runScript("stop \(directory) >/dev/null 2>&1")
            throw error
        }
    }

    private init(directory: String, port: Int, location: PostgresLocation) {
        self.directory = directory
        self.port = port
        self.location = location
    }

    /// Stops the server as a crash does: every connection dropped at once, nothing flushed by a shutdown.
    func crash() throws {
        guard PostgresTestCluster.runScript("crash \(directory) >/dev/null 2>&1") == 0 else {
            throw Failed(description: "pg_ctl stop -m immediate failed")
        }
    }

    /// Starts the server again on the same directory and port; it recovers from its WAL.
    func restart() throws {
        guard PostgresTestCluster.runScript("restart \(directory) \(port) >/dev/null 2>&1") == 0 else {
            throw Failed(description: "pg_ctl start after the crash failed: see \(directory)/server.log")
        }
    }

    deinit {
        _ = PostgresTestCluster.runScript("stop \(directory) >/dev/null 2>&1")
    }
}
