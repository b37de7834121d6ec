import Logging

/// Every store a process uses, over the engine the configuration's `DatabaseLocation` names: SQLite (today's
/// stores over `ProxyDatabase`) or PostgreSQL (the Postgres stores over one connection pool per process). Each
/// store comes typed by its protocol, so a process does not know which engine it runs on.
public struct StoreSet: Sendable {
    /// The database the stores share.
    public enum Engine: Sendable {
        /// The SQLite file of this host.
        case sqlite(ProxyDatabase)
        /// A PostgreSQL database shared by every host.
        case postgresql(PostgresProxyDatabase)
    }

    /// Which database the stores use.
    public let engine: Engine

    /// The stores over an open SQLite `database`.
    public init(sqlite database: ProxyDatabase) {
        engine = .sqlite(database)
    }

    /// The stores over a running PostgreSQL `database`.
    public init(postgresql database: PostgresProxyDatabase) {
        engine = .postgresql(database)
    }

    /// Opens the configured database, migrating it first when `migrate` is true (the supervisor, the
    /// management commands) or else checking that its schema is this binary's (every child), runs `body` with
    /// its stores, then closes it: PostgreSQL's pool keeps serving until `body` has returned, so a process's
    /// drain (its service group, inside `body`) still reaches the database to the end.
    ///
    /// A child (`migrate` false) that finds PostgreSQL unreachable waits for it, saying so once, instead of
    /// failing: the supervisor checked the database before it started any child, so this is a child restarted
    /// in an outage, and one that exited would be restarted into the same failure until the supervisor gave up
    /// and took the host's serving workers down with it. A start or command (`migrate` true) fails at once.
    public static func withOpened<Result: Sendable>(
        _ configuration: ProxyConfiguration, migrate: Bool, logger: Logger,
        _ body: (StoreSet) async throws -> Result
    ) async throws -> Result {
        switch configuration.database {
        case .sqlite:
            let database = try ProxyDatabase.open(at: configuration.paths.database, migrate: migrate)
            return try await body(StoreSet(sqlite: database))
        case .postgresql(let location):
            if !migrate { try await waitUntilReachable(location, logger: logger) }
            return try await PostgresProxyDatabase.withRunning(location, logger: logger) { database in
                if migrate {
                    try await PostgresSchema.migrate(database)
                } else {
                    try await PostgresSchema.check(database)
                }
                return try await body(StoreSet(postgresql: database))
            }
        }
    }

    /// Returns once a connection to `location` opens: at once when it does, else after one log line and a try
    /// every second; ends (throwing) when the task is cancelled.
    static func waitUntilReachable(
        _ location: PostgresLocation, logger: Logger, retry: Duration = .seconds(1)
    ) async throws {
        let probe = PostgresProxyDatabase(location: location, logger: logger)
        var waited = false
        while true {
            do {
                try await probe.checkReachable()
                if waited { logger.notice("PostgreSQL reachable: starting") }
                return
            } catch let error as PostgresProxyDatabase.Unreachable {
                if !waited {
                    logger.warning(
                        "PostgreSQL unreachable at start: waiting for it before serving (a process started in an outage cannot load what it serves with; the host's other processes go on)",
                        metadata: ["reason": "\(error.reason)"])
                    waited = true
                }
            }
            try await Task.sleep(for: retry)
        }
    }

    /// The SQLite database, or nil on PostgreSQL (for what only SQLite has: its WAL, its file's directory).
    public var sqlite: ProxyDatabase? {
        if case .sqlite(let database) = engine { return database }
        return nil
    }

    /// The PostgreSQL database, or nil on SQLite (for cluster-wide jobs' advisory locks).
    public var postgresql: PostgresProxyDatabase? {
        if case .postgresql(let database) = engine { return database }
        return nil
    }

    /// On PostgreSQL, what hears that something workers route on changed on any host; nil on SQLite (one host,
    /// where the poll alone keeps workers current).
    public var changeListener: PostgresChangeListener? {
        postgresql.map { PostgresChangeListener(database: $0) }
    }

    /// On PostgreSQL, what a worker knows of the database's reach, so that requests never wait on an outage;
    /// nil on SQLite (a file of this host: no outage to serve through).
    public func reachability(logger: Logger) -> DatabaseReachability? {
        postgresql.map { _ in DatabaseReachability(logger: logger) }
    }

    /// The upstream keys, sealed and opened with `box`.
    public func keys(box: SecretBox) -> any KeyStoring {
        switch engine {
        case .sqlite(let database): return KeyStore(database: database, box: box)
        case .postgresql(let database): return PostgresKeyStore(database: database, box: box)
        }
    }

    /// Key health under `policy`.
    public func keyHealth(policy: KeyHealthPolicy, logger: Logger) -> any KeyHealthStoring {
        switch engine {
        case .sqlite(let database): return KeyHealthStore(database: database, policy: policy, logger: logger)
        case .postgresql(let database):
            return PostgresKeyHealthStore(database: database, policy: policy, logger: logger)
        }
    }

    /// The client tokens.
    public var tokens: any TokenStoring {
        switch engine {
        case .sqlite(let database): return TokenStore(database: database)
        case .postgresql(let database): return PostgresTokenStore(database: database)
        }
    }

    /// The model catalogue.
    public var models: any ModelStoring {
        switch engine {
        case .sqlite(let database): return ModelStore(database: database)
        case .postgresql(let database): return PostgresModelStore(database: database)
        }
    }

    /// The live settings' overrides.
    public var settings: any SettingsStoring {
        switch engine {
        case .sqlite(let database): return SettingsStore(database: database)
        case .postgresql(let database): return PostgresSettingsStore(database: database)
        }
    }

    /// The objects created through the gateway.
    public var objects: any ObjectStoring {
        switch engine {
        case .sqlite(let database): return ObjectStore(database: database)
        case .postgresql(let database): return PostgresObjectStore(database: database)
        }
    }

    /// What workers read to route.
    public var poolState: any PoolStateReading {
        switch engine {
        case .sqlite(let database): return PoolStateStore(database: database)
        case .postgresql(let database): return PostgresPoolStateStore(database: database)
        }
    }

    /// The shared round-robin position.
    public var rotationCursor: any RotationCursorLeasing {
        switch engine {
        case .sqlite(let database): return RotationCursor(database: database)
        case .postgresql(let database): return PostgresRotationCursor(database: database)
        }
    }

    /// The `least_used` strategy's shared pick counts.
    public var leastUsedPicks: any LeastUsedPicking {
        switch engine {
        case .sqlite(let database): return LeastUsedPicks(database: database)
        case .postgresql(let database): return PostgresLeastUsedPicks(database: database)
        }
    }

    /// Client tokens' per-minute request counts.
    public var rateWindows: any TokenRateWindowing {
        switch engine {
        case .sqlite(let database): return TokenRateWindows(database: database)
        case .postgresql(let database): return PostgresTokenRateWindows(database: database)
        }
    }

    /// Client tokens' quota reservations.
    public var quotaReservations: any TokenQuotaReserving {
        switch engine {
        case .sqlite(let database): return TokenQuotaReservations(database: database)
        case .postgresql(let database): return PostgresTokenQuotaReservations(database: database)
        }
    }

    /// The secret check.
    public var secretCheck: any SecretCheckStoring {
        switch engine {
        case .sqlite(let database): return SecretCheckStore(database: database)
        case .postgresql(let database): return PostgresSecretCheckStore(database: database)
        }
    }

    /// The operators' login sessions.
    public var adminSessions: any AdminSessionStoring {
        switch engine {
        case .sqlite(let database): return AdminSessionStore(database: database)
        case .postgresql(let database): return PostgresAdminSessionStore(database: database)
        }
    }

    /// The audit log.
    public var audit: any AuditLogging {
        switch engine {
        case .sqlite(let database): return AuditLog(database: database)
        case .postgresql(let database): return PostgresAuditLog(database: database)
        }
    }

    /// The chat console's history.
    public var chatHistory: any ChatHistoryStoring {
        switch engine {
        case .sqlite(let database): return ChatHistoryStore(database: database)
        case .postgresql(let database): return PostgresChatHistoryStore(database: database)
        }
    }
}
