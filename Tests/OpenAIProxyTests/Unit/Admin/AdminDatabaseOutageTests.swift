import Foundation
import HTTPServing
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Admin API in a database outage")
struct AdminDatabaseOutageTests {
    /// A probe of a PostgreSQL database that is never started: a check waits on its pool until `limit`.
    private static func probe(limit: Duration = .milliseconds(100)) throws -> ReachabilityProbe {
        let logger = Logger(label: "test")
        let location = try PostgresLocation(parsing: "postgresql://proxy@127.0.0.1:1/proxy")
        var probe = ReachabilityProbe(
            reachability: DatabaseReachability(logger: logger, lines: .admin),
            database: PostgresProxyDatabase(location: location, logger: logger))
        probe.limit = limit
        return probe
    }

    @Test("in a known outage the API answers 503 database_unavailable at once; health says degraded with 200")
    func knownOutage() async throws {
        let harness = try AdminHarness()
        var services = harness.services
        let probe = try Self.probe()
        services.databaseProbe = probe
        let app = Application(router: AdminServer.buildRouter(services))
        try await app.test(.router) { client in
            #expect(try await client.call(.get, "/api/keys").status == .ok)
            #expect(try await client.call(.get, "/healthz", headers: [:]).text == #"{"status":"ok"}"#)
            // A request body is read through the middleware as it is without it.
            let login = try await client.call(
                .post, "/api/auth/login", json: #"{"admin_token":"\#(AdminHarness.adminToken)"}"#, headers: [:])
            #expect(login.status == .ok)
            let model = try await client.call(.post, "/api/models", json: #"{"model_name":"gpt-outage"}"#)
            #expect(model.status == .created || model.status == .ok, "\(model.text)")

            probe.reachability.markUnreachable("test")
            for (method, path) in [(HTTPRequest.Method.get, "/api/keys"), (.get, "/api/stats/overview")] {
                let answer = try await client.call(method, path)
                #expect(answer.status == .serviceUnavailable)
                #expect(answer.errorCode == "database_unavailable")
                #expect((answer.object["error"] as? [String: Any])?["type"] as? String == "server_error")
                #expect(answer.headers[.retryAfter] == "5")
            }
            // The console's login answers it too, so the page can say why.
            let refused = try await client.call(
                .post, "/api/auth/login", json: #"{"admin_token":"\#(AdminHarness.adminToken)"}"#, headers: [:])
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.errorCode == "database_unavailable")
            // A scrape answers at once with what needs no database: the key figures are left out.
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.text.contains("openai_proxy_collector_up"))
            #expect(!metrics.text.contains("openai_proxy_keys{"))
            let health = try await client.call(.get, "/healthz", headers: [:])
            #expect(health.status == .ok)
            #expect(health.text == #"{"status":"degraded","database":"unreachable"}"#)

            probe.reachability.markReachable()
            #expect(try await client.call(.get, "/api/keys").status == .ok)
            #expect(try await client.call(.get, "/metrics").text.contains("openai_proxy_keys{"))
            #expect(try await client.call(.get, "/healthz", headers: [:]).text == #"{"status":"ok"}"#)
        }
    }

    @Test("without a probe (SQLite) nothing answers 503 and health stays ok")
    func sqliteUnaffected() async throws {
        let harness = try AdminHarness()
        #expect(harness.services.databaseProbe == nil)
        try await harness.run { client in
            let keys = try await client.call(.get, "/api/keys")
            #expect(keys.status == .ok)
            let health = try await client.call(.get, "/healthz", headers: [:])
            #expect(health.text == #"{"status":"ok"}"#)
        }
    }

    @Test("a request waiting on the database is answered 503 once the outage is known", .timeLimit(.minutes(1)))
    func waitingRequest() async throws {
        let probe = try Self.probe()
        let (entered, signal) = AsyncStream.makeStream(of: Void.self)
        let router = Router()
        router.middlewares.add(ErrorBodyMiddleware())
        router.middlewares.add(DatabaseOutageMiddleware<BasicRequestContext>(probe: probe))
        router.get("/waits") { _, _ -> String in
            signal.yield()
            // As a pool lease does while the server is down: it waits until cancelled.
            try await Task.sleep(for: .seconds(3600))
            return "never"
        }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await withThrowingTaskGroup(of: AdminAnswer.self) { group in
                group.addTask { try await client.call(.get, "/waits", headers: [:]) }
                var iterator = entered.makeAsyncIterator()
                _ = await iterator.next()
                probe.reachability.markUnreachable("test")
                let answer = try await group.next()
                #expect(answer?.status == .serviceUnavailable)
                #expect(answer?.errorCode == "database_unavailable")
            }
        }
    }

    @Test("a request that fails with an error of no known kind while the database is gone gets 503, not 500")
    func failureInAnOutage() async throws {
        let probe = try Self.probe()
        let router = Router()
        router.middlewares.add(ErrorBodyMiddleware())
        router.middlewares.add(DatabaseOutageMiddleware<BasicRequestContext>(probe: probe))
        struct ConnectionClosed: Error {}
        router.get("/fails") { _, _ -> String in throw ConnectionClosed() }
        router.get("/refuses") { _, _ -> String in throw HTTPError(.badRequest) }
        let app = Application(router: router)
        try await app.test(.router) { client in
            // An answer of the route's own passes as it is, without a check.
            #expect(try await client.call(.get, "/refuses", headers: [:]).status == .badRequest)
            #expect(!probe.reachability.isUnreachable)
            // The check finds no answer within its limit: the database is gone, so 503.
            let answer = try await client.call(.get, "/fails", headers: [:])
            #expect(answer.status == .serviceUnavailable)
            #expect(answer.errorCode == "database_unavailable")
            #expect(probe.reachability.isUnreachable)
        }
    }
}
