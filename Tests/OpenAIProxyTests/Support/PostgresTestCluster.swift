import Foundation
import Logging
import Synchronization

@testable import Shared

/// The one throw-away PostgreSQL cluster of this test process, started at first use by `scripts/pg-scratch.sh`
/// (or the server `OPENAI_PROXY_TEST_DATABASE_URL` names) and stopped when the process exits; each user gets a
/// fresh database of its own, dropped after.
actor PostgresTestCluster {
    /// The process's cluster.
    static let shared = PostgresTestCluster()

    /// Why the PostgreSQL cases are not run, or nil when they are. Without `OPENAI_PROXY_TEST_REQUIRE_POSTGRESQL`
    /// (which `make test` sets) a machine with no PostgreSQL server skips them, saying so once; with it they
    /// run and fail when no cluster can be had.
    static let skipReason: String? = {
        let environment = ProcessInfo.processInfo.environment
        if environment["OPENAI_PROXY_TEST_REQUIRE_POSTGRESQL"] == "1" { return nil }
        if environment["OPENAI_PROXY_TEST_DATABASE_URL"].map({ !$0.isEmpty }) == true { return nil }
        let installed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.isEmpty == false
        if installed { return nil }
        let reason = "no PostgreSQL server here (Debian: apt-get install postgresql): the PostgreSQL cases are skipped"
        print("PostgresTestCluster: \(reason)")
        return reason
    }()

    /// Why the cluster could not be had.
    struct Unavailable: Error, CustomStringConvertible {
        let description: String
    }

    private var administrator: Result<PostgresLocation, Unavailable>?
    private var databaseCount = 0

    /// Creates a database, runs `body` with its location, and drops the database.
    static func withFreshDatabase<Result: Sendable>(
        _ body: (PostgresLocation) async throws -> Result
    ) async throws -> Result {
        let (administrator, name) = try await shared.newDatabaseName()
        try await execute("CREATE DATABASE \(name)", on: administrator)
        var location = administrator
        location.database = name
        do {
            let result = try await body(location)
            try await execute("DROP DATABASE \(name) WITH (FORCE)", on: administrator)
            return result
        } catch {
            try? await execute("DROP DATABASE \(name) WITH (FORCE)", on: administrator)
            throw error
        }
    }

    private func newDatabaseName() throws -> (PostgresLocation, String) {
        let administrator = try self.administratorLocation()
        databaseCount += 1
        return (administrator, "op_test_\(getpid())_\(databaseCount)")
    }

    private static func execute(_ sql: String, on location: PostgresLocation) async throws {
        try await PostgresProxyDatabase.withRunning(location, logger: Logger(label: "test.postgres")) { database in
            try await database.connection { connection in
                try await connection.query(.init(unsafeSQL: sql), logger: database.logger)
            }
        }
    }

    private func administratorLocation() throws -> PostgresLocation {
        if administrator == nil { administrator = Self.start() }
        return try administrator!.get()
    }

    private static func start() -> Result<PostgresLocation, Unavailable> {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["OPENAI_PROXY_TEST_DATABASE_URL"], !url.isEmpty {
            do {
                return .success(try PostgresLocation(parsing: url, password: environment["PGPASSWORD"]))
            } catch {
                return .failure(Unavailable(description: "OPENAI_PROXY_TEST_DATABASE_URL: \(error)"))
            }
        }
        let directory = "/tmp/op-pg-\(getpid())"
        let output = directory + ".out"
        defer { unlink(output) }
        let status = runScript("start \(directory) \(freePort()) >\(output) 2>&1")
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            return .failure(Unavailable(description: "scripts/pg-scratch.sh start failed: \(printed)"))
        }
        startedDirectory.withLock { $0 = directory }
        atexit {
            guard let directory = startedDirectory.withLock({ $0 }) else { return }
            _ = PostgresTestCluster.runScript("stop \(directory) >/dev/null 2>&1")
        }
        do {
            return .success(try PostgresLocation(parsing: printed.trimmingWhitespace()))
        } catch {
            return .failure(Unavailable(description: "scripts/pg-scratch.sh printed no URL: \(printed)"))
        }
    }

    /// Runs `scripts/pg-scratch.sh <arguments>` through `/bin/sh` and returns its exit status. A direct
    /// `posix_spawn` and `waitpid`: Foundation's `Process` here never saw the script exit, the server it
    /// starts lives on.
    nonisolated static func runScript(_ arguments: String) -> Int32 {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/pg-scratch.sh")
        let command = "exec '\(script.path)' \(arguments) </dev/null"
        let words: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        // WIFEXITED / WEXITSTATUS are C macros.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : -1
    }
}

/// The cluster this process started, stopped at exit.
private let startedDirectory = Mutex<String?>(nil)
