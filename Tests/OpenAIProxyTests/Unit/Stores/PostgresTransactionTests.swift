import Logging
import PostgresNIO
import Testing

@testable import Shared

/// `PostgresProxyDatabase.transaction` when the server ends its connection: it fails instead of waiting forever
/// (postgres-nio's own, after such a failure, writes `ROLLBACK` to the closed channel and is never answered), the
/// pool goes on with a new connection, and a statement's error still rolls back.
@Suite("PostgreSQL transactions", .enabled(if: PostgresTestCluster.skipReason == nil))
struct PostgresTransactionTests {
    private static let logger = Logger(label: "test.postgres")
    private static let terminate: PostgresQuery = "SELECT pg_terminate_backend(pg_backend_pid())"

    private static func count(_ database: PostgresProxyDatabase) async throws -> Int64 {
        try await database.connection { connection in
            let rows = try await connection.query("SELECT COUNT(*) FROM marks", logger: logger)
            for try await count in rows.decode(Int64.self) { return count }
            return -1
        }
    }

    @Test("a transaction whose connection the server ends fails, rolled back, and the next one commits")
    func serverEndsTheConnection() async throws {
        try await PostgresTestCluster.withFreshDatabase { location in
            try await PostgresProxyDatabase.withRunning(location, logger: Self.logger) { database in
                try await database.connection { connection in
                    try await connection.query("CREATE TABLE marks (id BIGINT PRIMARY KEY)", logger: Self.logger)
                }
                await #expect(throws: (any Error).self) {
                    try await database.transaction { connection in
                        try await connection.query("INSERT INTO marks VALUES (1)", logger: Self.logger)
                        try await connection.query(Self.terminate, logger: Self.logger)
                    }
                }
                // A statement sent after the connection ended would never be answered: the close ends it.
                await #expect(throws: (any Error).self) {
                    try await database.transaction { connection in
                        try await connection.query("INSERT INTO marks VALUES (2)", logger: Self.logger)
                        _ = try? await connection.query(Self.terminate, logger: Self.logger)
                        try await connection.query("INSERT INTO marks VALUES (3)", logger: Self.logger)
                    }
                }
                // The pool may hand out a dropped connection once before it has seen it close: that call fails
                // at once with the connection's end, and the next one gets a live connection.
                var failures: [String] = []
                while true {
                    do {
                        try await database.transaction { connection in
                            try await connection.query("INSERT INTO marks VALUES (4)", logger: Self.logger)
                        }
                        break
                    } catch {
                        #expect(PostgresProxyDatabase.isUnreachable(error), "\(String(reflecting: error))")
                        failures.append("\(error)")
                        if failures.count > 2 { break }
                    }
                }
                #expect(failures.count <= 2, "\(failures)")
                #expect(try await Self.count(database) == 1)
            }
        }
    }

    struct Refused: Error {}

    @Test("a body's own error rolls back, is rethrown as it is, and the connection serves again")
    func bodyError() async throws {
        try await PostgresTestCluster.withFreshDatabase { location in
            try await PostgresProxyDatabase.withRunning(location, logger: Self.logger) { database in
                try await database.connection { connection in
                    try await connection.query("CREATE TABLE marks (id BIGINT PRIMARY KEY)", logger: Self.logger)
                }
                await #expect(throws: Refused.self) {
                    try await database.transaction { connection in
                        try await connection.query("INSERT INTO marks VALUES (1)", logger: Self.logger)
                        throw Refused()
                    }
                }
                #expect(try await Self.count(database) == 0)
                try await database.transaction { connection in
                    try await connection.query("INSERT INTO marks VALUES (1)", logger: Self.logger)
                }
                #expect(try await Self.count(database) == 1)
            }
        }
    }
}
