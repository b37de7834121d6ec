import Foundation
import KeyProbe
import Logging
import Shared

/// Everything the admin routes use, built once per process; tests build one over a temporary database.
public struct AdminServices: Sendable {
    /// Every store, over the configured engine.
    public let stores: StoreSet
    /// What the statistics, request-log and metrics routes read, on the same engine.
    public let reading: any AdminReading
    /// Seals and opens upstream key values.
    public let box: SecretBox
    /// The admin bearer token (also what `POST /api/auth/login` takes).
    public let adminToken: String
    /// The configuration: live-setting defaults and the upstream for a model refresh.
    public let configuration: ProxyConfiguration
    /// How the chat console reaches the proxy; nil when chat is not available (router tests without a proxy).
    public let chat: ChatGateway?
    /// Unix ms now; tests pass a clock they move.
    public let now: @Sendable () -> Int64
    /// On PostgreSQL, what knows the database's reach: the API answers 503 in an outage and `/healthz` says
    /// degraded. Nil on SQLite, and in router tests that do not set one.
    public var databaseProbe: ReachabilityProbe? = nil
    /// How long a login session lasts, in ms (12 hours).
    public var sessionLifetime: Int64 = 12 * 3_600_000
    /// Failed logins per client address.
    let throttle = LoginThrottle()
    /// Every route registered, for the OpenAPI document test.
    let routes = RouteRegistry()
    /// Progress of `POST /api/keys/test-all` runs.
    let testRuns: KeyTestRuns
    /// Runs `POST /api/keys/test-all` in the background; a service of the admin server's group.
    let keyTests: BackgroundKeyTests

    /// Services over `stores`.
    public init(
        stores: StoreSet, box: SecretBox, adminToken: String, configuration: ProxyConfiguration,
        chat: ChatGateway? = nil, now: @escaping @Sendable () -> Int64 = AdminServices.systemNow
    ) {
        self.stores = stores
        switch stores.engine {
        case .sqlite(let database): reading = StatsReader(database: database)
        case .postgresql(let database): reading = PostgresStatsReader(database: database)
        }
        self.box = box
        self.adminToken = adminToken
        self.configuration = configuration
        self.chat = chat
        self.now = now
        let runs = KeyTestRuns()
        testRuns = runs
        keyTests = BackgroundKeyTests(
            probes: KeyProbeRunner(configuration: configuration, stores: stores, box: box), runs: runs)
    }

    /// Services over the SQLite `database`.
    public init(
        database: ProxyDatabase, box: SecretBox, adminToken: String, configuration: ProxyConfiguration,
        chat: ChatGateway? = nil, now: @escaping @Sendable () -> Int64 = AdminServices.systemNow
    ) {
        self.init(
            stores: StoreSet(sqlite: database), box: box, adminToken: adminToken, configuration: configuration,
            chat: chat, now: now)
    }

    /// The system clock in Unix ms.
    public static let systemNow: @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// The upstream keys.
    var keys: any KeyStoring { stores.keys(box: box) }
    /// Probes keys against the configured upstream and records the results.
    var probes: KeyProbeRunner {
        KeyProbeRunner(configuration: configuration, stores: stores, box: box)
    }
    /// The client tokens.
    var tokens: any TokenStoring { stores.tokens }
    /// The model catalogue.
    var models: any ModelStoring { stores.models }
    /// The live settings' overrides.
    var settings: any SettingsStoring { stores.settings }
    /// The audit log.
    var audit: any AuditLogging { stores.audit }
    /// The objects created through the gateway.
    var objects: any ObjectStoring { stores.objects }
    /// Operator login sessions.
    var sessions: SessionStore { SessionStore(storage: stores.adminSessions) }
    /// The chat console's history.
    var chatHistory: any ChatHistoryStoring { stores.chatHistory }

    /// An audit entry for a change made by the request's identity.
    func auditEntry(
        _ context: AdminRequestContext, action: String, target: String?, detail: [String: AuditValue] = [:]
    ) -> AuditEntry {
        AuditEntry(
            actor: context.identity?.actor ?? "anonymous", client: context.client, action: action, target: target,
            detail: detail.isEmpty ? nil : AuditValue.json(detail), now: now())
    }
}
