import Logging
import NIOSSL
import PostgresNIO
import _ConnectionPoolModule

/// The PostgreSQL database every process of every host shares: a pooled client, which serves queries only
/// while `run()` runs (as a `Service` in a process's group, or inside `withRunning`).
public struct PostgresProxyDatabase: Sendable {
    /// The pooled client.
    public let client: PostgresClient
    /// Where it connects (its description never shows the password).
    public let location: PostgresLocation
    /// Where queries log.
    public let logger: Logger

    /// A client for `location`; connects lazily, once `run()` runs.
    public init(location: PostgresLocation, logger: Logger) {
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: Self.clientTLS(location.sslMode))
        // Every process of every host holds its own pool against one server's connection limit (100 by
        // default): a few connections each, since the stores' transactions are short.
        configuration.options.maximumConnections = 4
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.location = location
        self.logger = logger
    }

    /// Serves the client's connections until the task is cancelled.
    public func run() async {
        await client.run()
    }

    /// Runs `body` with a database for `location` running, then stops it; throws `Unreachable` first when
    /// the server cannot be reached or refuses the login.
    public static func withRunning<Result: Sendable>(
        _ location: PostgresLocation, logger: Logger, _ body: (PostgresProxyDatabase) async throws -> Result
    ) async throws -> Result {
        let database = PostgresProxyDatabase(location: location, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            // Checked once the pool's task runs, so that the body's first query finds the pool started.
            try await database.checkReachable()
            return try await body(database)
        }
    }

    /// The server could not be reached, or refused the role, password or database.
    public struct Unreachable: Error, CustomStringConvertible {
        /// The database's URL, without its password.
        public let location: String
        /// What the connection attempt met.
        public let reason: String

        public var description: String { "cannot connect to PostgreSQL at \(location): \(reason)" }
    }

    /// Opens and closes one connection, so that a server that is down or refuses the login fails at once with
    /// one line; the pool alone retries for as long as a lease waits.
    public func checkReachable() async throws {
        do {
            let connection = try await dedicatedConnection(id: 0)
            try await connection.close()
        } catch let error as PSQLError {
            let reason = error.serverInfo?[.message] ?? error.underlying.map { "\($0)" } ?? "\(error.code)"
            throw Unreachable(location: location.description, reason: reason)
        } catch {
            throw Unreachable(location: location.description, reason: "\(error)")
        }
    }

    /// A connection of its own, outside the pool, for a session that must last (an advisory lock held while a
    /// cluster-wide job runs); the caller closes it.
    public func dedicatedConnection(id: Int) async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: try Self.connectionTLS(location.sslMode))
        configuration.options.connectTimeout = .seconds(10)
        return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws, and `body`'s error
    /// rethrown as it is, as GRDB's `write` does.
    ///
    /// Not postgres-nio's `withTransaction`: a query written to a connection whose channel has just closed is
    /// never answered, and its task never ends, cancelled or not. That one, after a query failed because the server
    /// dropped the connection, writes `ROLLBACK` to the closed channel and waits forever (a collector's batch
    /// caught by a crash never committed again); and a `COMMIT` written as the server crashes waits forever too.
    /// Here the transaction ends as failed once its connection closes, whatever it was waiting for; a dropped
    /// session is rolled back by the server, so `ROLLBACK` is sent only on a live connection.
    public func transaction<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        return try await client.withConnection { connection in
            let outcome = await awaitBounded(nil, orUntil: connection.closeFuture) {
                try await connection.query("BEGIN", logger: logger)
                let result: Result
                do {
                    result = try await body(connection)
                } catch {
                    guard !Self.connectionLost(error) else { throw error }
                    do {
                        try await connection.query("ROLLBACK", logger: logger)
                    } catch {
                        // A connection whose transaction state is unknown must not go back to the pool.
                        try? await connection.close()
                    }
                    throw error
                }
                try await connection.query("COMMIT", logger: logger)
                return result
            }
            switch outcome {
            case .done(let result): return result
            case .failed(let error): throw error
            // Not reached: the call has no time limit.
            case .timedOut: throw ConnectionClosed()
            }
        }
    }

    /// Whether `error` says the database is out of reach (the connection dropped, the pool gave up connecting, no
    /// answer in time) rather than that it refused the statement: the call is worth trying again later.
    public static func isUnreachable(_ error: any Error) -> Bool {
        if connectionLost(error) { return true }
        if let error = error as? ConnectionPoolError { return error == .connectionCreationCircuitBreakerTripped }
        if case .noAnswer = error as? PostgresStoreError { return true }
        return false
    }

    /// Whether `error` is the connection's end rather than the statement's: its transaction is gone with it.
    static func connectionLost(_ error: any Error) -> Bool {
        if error is ConnectionClosed { return true }
        guard let error = error as? PSQLError else { return false }
        return [.serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown].contains(
            error.code)
    }

    /// Runs `body` on one pooled connection, outside any transaction; it fails once that connection closes, even
    /// if a statement was written to it as it closed (see `transaction`).
    public func connection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await client.withConnection { connection in
            switch await awaitBounded(nil, orUntil: connection.closeFuture, { try await body(connection) }) {
            case .done(let result): return result
            case .failed(let error): throw error
            // Not reached: the call has no time limit.
            case .timedOut: throw ConnectionClosed()
            }
        }
    }

    /// The TLS behaviour of libpq's `sslmode`: nil for none, else what is checked and whether the server
    /// must offer TLS.
    static func tlsPolicy(_ mode: PostgresSSLMode) -> (configuration: TLSConfiguration, required: Bool)? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable: return nil
        case .allow, .prefer:
            configuration.certificateVerification = .none
            return (configuration, false)
        case .require:
            configuration.certificateVerification = .none
            return (configuration, true)
        case .verifyCA:
            configuration.certificateVerification = .noHostnameVerification
            return (configuration, true)
        case .verifyFull: return (configuration, true)
        }
    }

    /// `sslmode` for the pool.
    static func clientTLS(_ mode: PostgresSSLMode) -> PostgresClient.Configuration.TLS {
        guard let policy = tlsPolicy(mode) else { return .disable }
        return policy.required ? .require(policy.configuration) : .prefer(policy.configuration)
    }

    /// `sslmode` for a single connection.
    static func connectionTLS(_ mode: PostgresSSLMode) throws -> PostgresConnection.Configuration.TLS {
        guard let policy = tlsPolicy(mode) else { return .disable }
        let context = try NIOSSLContext(configuration: policy.configuration)
        return policy.required ? .require(context) : .prefer(context)
    }
}
