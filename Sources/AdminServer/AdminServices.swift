import Foundation
import KeyProbe
import Logging
import Shared

/// Everything the admin routes use, built once per process; tests build one over a temporary database.
public struct AdminServices: Sendable {
    /// The shared database.
    public let database: ProxyDatabase
    /// What the statistics, request-log and metrics routes read.
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

    /// Services over `database`.
    public init(
        database: ProxyDatabase, box: SecretBox, adminToken: String, configuration: ProxyConfiguration,
        chat: ChatGateway? = nil, now: @escaping @Sendable () -> Int64 = AdminServices.systemNow
    ) {
        self.database = database
        reading = StatsReader(database: database)
        self.box = box
        self.adminToken = adminToken
        self.configuration = configuration
        self.chat = chat
        self.now = now
        let runs = KeyTestRuns()
        testRuns = runs
        keyTests = BackgroundKeyTests(
            probes: KeyProbeRunner(configuration: configuration, database: database, box: box), runs: runs)
    }

    /// The system clock in Unix ms.
    public static let systemNow: @Sendable () -> Int64 = { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    var keys: KeyStore { KeyStore(database: database, box: box) }
    /// Probes keys against the configured upstream and records the results.
    var probes: KeyProbeRunner {
        KeyProbeRunner(configuration: configuration, database: database, box: box)
    }
    var tokens: TokenStore { TokenStore(database: database) }
    var models: ModelStore { ModelStore(database: database) }
    var settings: SettingsStore { SettingsStore(database: database) }
    var audit: any AuditLogging { AuditLog(database: database) }
    /// The objects created through the gateway.
    var objects: ObjectStore { ObjectStore(database: database) }
    var sessions: SessionStore { SessionStore(storage: AdminSessionStore(database: database)) }
    /// The chat console's history.
    var chatHistory: any ChatHistoryStoring { ChatHistoryStore(database: database) }

    /// An audit entry for a change made by the request's identity.
    func auditEntry(
        _ context: AdminRequestContext, action: String, target: String?, detail: [String: AuditValue] = [:]
    ) -> AuditEntry {
        AuditEntry(
            actor: context.identity?.actor ?? "anonymous", client: context.client, action: action, target: target,
            detail: detail.isEmpty ? nil : AuditValue.json(detail), now: now())
    }
}
