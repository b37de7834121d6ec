import Foundation
import HTTPServing
import Hummingbird
import Logging
import ServiceLifecycle
import Shared

/// The admin role: the management API (`/api/*`, behind the admin token) and `/healthz` on the admin port.
public enum AdminServer {
    /// Runs the admin server on the inherited listening socket until SIGTERM.
    public static func run(
        configuration: ProxyConfiguration, listener: Int32, onServing: @escaping @Sendable () -> Void
    ) async throws {
        let logger = Logger(label: "openai-proxy")
        let database = try ProxyDatabase.open(at: configuration.paths.database, migrate: false)
        let adminToken = try SecretMaterial.adminToken(for: configuration, create: false).value
        let box = SecretBox(secret: try SecretMaterial.encryptionSecret(for: configuration, create: false))
        let router = buildRouter(keys: KeyStore(database: database, box: box), adminToken: adminToken)
        let server = InheritedSocketServer(
            descriptor: listener, responder: router.buildResponder(), logger: logger, onServing: onServing)
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// The admin routes; tests drive this router directly.
    public static func buildRouter(keys: KeyStore, adminToken: String) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(ErrorBodyMiddleware())
        router.get("/healthz") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: .init(string: "{\"status\":\"ok\"}")))
        }
        let api = router.group("/api").add(middleware: AdminAuthMiddleware(adminToken: adminToken))
        KeysRoutes(keys: keys).register(on: api)
        MetricsRoutes(database: keys.database).register(on: router)
        return router
    }
}
