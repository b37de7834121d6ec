import Foundation
import HTTPServing
import Hummingbird
import KeyProbe
import Logging
import ServiceLifecycle
import Shared

/// The admin role: the management API (`/api/*`, behind a login or the admin token), its OpenAPI document,
/// the web console (`/`, `/assets/`, `/vendor/`), `/metrics` and `/healthz` on the admin port.
public enum AdminServer {
    /// Runs the admin server on the inherited listening socket until SIGTERM.
    public static func run(
        configuration: ProxyConfiguration, listener: Int32, onServing: @escaping @Sendable () -> Void
    ) async throws {
        let logger = Logger(label: "openai-proxy")
        // The database stays open (PostgreSQL's pool serving) until the group below has drained.
        try await StoreSet.withOpened(configuration, migrate: false, logger: logger) { stores in
            try await run(
                configuration: configuration, listener: listener, stores: stores, logger: logger, onServing: onServing)
        }
    }

    /// Runs the admin server over `stores` until SIGTERM.
    private static func run(
        configuration: ProxyConfiguration, listener: Int32, stores: StoreSet, logger: Logger,
        onServing: @escaping @Sendable () -> Void
    ) async throws {
        let adminToken = try SecretMaterial.adminToken(for: configuration, create: false).value
        let box = try SecretMaterial.box(for: configuration, create: false)
        let chat = try await ChatGateway.prepare(configuration: configuration, tokens: stores.tokens)
        var services = AdminServices(
            stores: stores, box: box, adminToken: adminToken, configuration: configuration, chat: chat)
        services.databaseProbe = stores.postgresql.map { database in
            ReachabilityProbe(
                reachability: DatabaseReachability(logger: logger, lines: .admin), database: database)
        }
        let router = buildRouter(services)
        ConsoleRoutes(configuration: configuration).logVendorState(logger)
        let server = InheritedSocketServer(
            descriptor: listener, responder: router.buildResponder(), logger: logger, onServing: onServing)
        // The one background prober of the service lives here: one admin process per service, and on PostgreSQL
        // only the one holding the prober's lock probes, for the whole cluster.
        var prober = KeyProbeService(runner: services.probes, logger: logger)
        prober.cluster = ClusterJobLock(stores: stores, key: ClusterJobLock.proberKey, name: "key prober")
        // Shut down in reverse: the prober stops, the server drains, then the key tests it started finish.
        let probe: [any Service] = services.databaseProbe.map { [$0] } ?? []
        let group = ServiceGroup(
            configuration: .init(
                services: [services.keyTests, server, prober] + probe, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// The admin routes; tests drive this router directly. Each route group registers in one line.
    public static func buildRouter(_ services: AdminServices) -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        router.middlewares.add(ErrorBodyMiddleware())
        router.middlewares.add(
            AdminHostMiddleware(
                policy: AdminHostPolicy(
                    listen: services.configuration.adminListen, extra: services.configuration.adminHosts)))
        router.middlewares.add(InputErrorMiddleware())
        let reachability = services.databaseProbe?.reachability
        router.get("/healthz") { _, _ in
            // 200 while the process serves; the body says degraded in a PostgreSQL outage (no database call).
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(
                    byteBuffer: .init(
                        string: ServiceHealth.body(databaseUnreachable: reachability?.isUnreachable == true))))
        }
        services.routes.add(.get, "/healthz")
        let outage = DatabaseOutageMiddleware<AdminRequestContext>(probe: services.databaseProbe)
        let open = APIGroup(
            group: router.group("/api").add(middleware: outage), prefix: "/api", registry: services.routes)
        OpenAPIRoutes().register(on: open)
        AuthRoutes(services: services).registerOpen(on: open)

        let api = APIGroup(
            group: router.group("/api").add(middleware: outage).add(
                middleware: AdminAuthMiddleware(services: services)),
            prefix: "/api",
            registry: services.routes)
        AuthRoutes(services: services).register(on: api)
        KeysRoutes(services: services).register(on: api)
        KeyTestRoutes(services: services).register(on: api)
        ModelsRoutes(services: services).register(on: api)
        TokensRoutes(services: services).register(on: api)
        StatsRoutes(services: services).register(on: api)
        UsageRoutes(services: services).register(on: api)
        ObjectsRoutes(services: services).register(on: api)
        AuditRoutes(services: services).register(on: api)
        SettingsRoutes(services: services).register(on: api)
        ChatRoutes(services: services).register(on: api)
        MetricsRoutes(services: services).register(on: router)
        services.routes.add(.get, "/metrics")
        // Open: the page logs in through the API, and everything it shows comes from behind the login.
        ConsoleRoutes(configuration: services.configuration, sessions: services.sessions, now: services.now).register(
            on: router, registry: services.routes)
        return router
    }
}
