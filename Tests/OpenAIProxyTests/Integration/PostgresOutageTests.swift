import Foundation
import Logging
import Testing

@testable import Shared

extension RealService {
    /// Two gateway installations on a PostgreSQL cluster of the suite's own, which is crashed while they serve
    /// and started again: both keep serving, and every request's usage row arrives once.
    @Suite("PostgreSQL outage", .serialized)
    struct PostgresOutageTests {
        static let keys = ["sk-outage-aaaaaaaa-0001", "sk-outage-bbbbbbbb-0002", "sk-outage-cccccccc-0003"]
        static let unreachable = "PostgreSQL unreachable: serving with what this worker knows"
        static let reachable = "PostgreSQL reachable again: leased rotation and shared limits resume"
        static let waitingAtStart = "PostgreSQL unreachable at start: waiting for it before serving"

        @Test(
            "with PostgreSQL crashed both hosts keep serving; once it is back no usage row is logged twice",
            arguments: StoreEngine.tested.filter { $0 == .postgresql })
        func outage(engine: StoreEngine) async throws {
            let cluster = try await CrashablePostgresCluster.start()
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            try await TwoHosts.run(
                databaseURL: cluster.location.url, secret: "outage-secret-0123456789abcdef0123", upstream: upstream,
                keys: Self.keys
            ) { hostA, hostB, token in
                try await exercise([hostA, hostB], cluster: cluster, upstream: upstream, token: token)
            }
        }

        @Test(
            "a worker that dies in an outage waits for PostgreSQL instead of taking its host down; it serves once back",
            arguments: StoreEngine.tested.filter { $0 == .postgresql })
        func workerRestartedInOutage(engine: StoreEngine) async throws {
            let cluster = try await CrashablePostgresCluster.start()
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let host = ProxyService(
                upstream: upstream.baseURL, workers: 2,
                extra: [
                    "OPENAI_PROXY_DATABASE_URL": cluster.location.url,
                    "SECRET_KEY": "outage-secret-0123456789abcdef0123",
                ])
            try host.addKeys(Self.keys)
            let token = try host.createToken()
            try await host.start()
            do {
                try cluster.crash()
                let worker = try #require(host.children().first { $0.command.contains(" worker --index 0") })
                kill(worker.pid, SIGKILL)
                // Restarted, the worker cannot load a snapshot: it says why once and waits, so the supervisor does
                // not restart it into the same failure until it gives up on the host.
                let waiting = await eventually(timeout: .seconds(30)) { host.log.contains(Self.waitingAtStart) }
                #expect(waiting, "\(host.log)")
                for _ in 0..<20 {
                    #expect(try await TestHTTP.chat(host, token: token).status == 200)
                }
                #expect(host.isRunning)
                #expect(host.log.components(separatedBy: "restarted worker 0").count - 1 == 1, "\(host.log)")
                #expect(host.log.components(separatedBy: Self.waitingAtStart).count - 1 == 1)

                try cluster.restart()
                let serving = await eventually(timeout: .seconds(60)) {
                    host.log.components(separatedBy: "worker.0: worker serving").count - 1 == 2
                }
                #expect(serving, "\(host.log)")
                #expect(host.log.contains("worker.0: PostgreSQL reachable: starting"))
                for _ in 0..<10 {
                    #expect(try await TestHTTP.chat(host, token: token).status == 200)
                }
            } catch {
                print("host:\n\(host.log)")
                throw error
            }
            #expect(await host.stop() == 0)
        }

        private func exercise(
            _ hosts: [ProxyService], cluster: CrashablePostgresCluster, upstream: FakeUpstream, token: String
        ) async throws {
            var sent = 0
            for index in 0..<20 {
                #expect(try await TestHTTP.chat(hosts[index % 2], token: token).status == 200)
            }
            sent += 20

            // Down: each request is bounded by TestHTTP's own 30 s timeout, far above the 250 ms a worker waits.
            try cluster.crash()
            // A key that fails in the outage: its mark waits in the workers and reaches the database once back.
            upstream.behave(.unauthorized, for: Self.keys[2])
            let before = upstream.keyCounts
            var statuses: [Int] = []
            for index in 0..<60 {
                statuses.append(try await TestHTTP.chat(hosts[index % 2], token: token).status)
            }
            sent += 60
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            // Rotation goes on per worker: every key served in the outage.
            let after = upstream.keyCounts
            for key in Self.keys {
                #expect((after[key] ?? 0) > (before[key] ?? 0), "\(key) unused in the outage: \(after)")
            }
            for host in hosts {
                // Said once per worker that met the outage, not once per request.
                let said = host.log.components(separatedBy: Self.unreachable).count - 1
                #expect((1...2).contains(said), "\(said) outage lines:\n\(host.log)")
            }

            for host in hosts { try await expectDegraded(host) }

            // Back on the same directory and port: each worker's poll finds it and says so once.
            try cluster.restart()
            for host in hosts {
                let unreachable = host.log.components(separatedBy: Self.unreachable).count - 1
                let back = await eventually(timeout: .seconds(30)) {
                    host.log.components(separatedBy: Self.reachable).count - 1 == unreachable
                }
                #expect(back, "\(host.log)")
            }
            for host in hosts { try await expectRecovered(host) }
            for index in 0..<20 {
                #expect(try await TestHTTP.chat(hosts[index % 2], token: token).status == 200)
            }
            sent += 20

            // The key marked in the outage is marked in the shared database, so every host knows it.
            let marked = try await PostgresProxyDatabase.withRunning(cluster.location, logger: Logger(label: "test")) {
                database in
                await eventually(timeout: .seconds(30)) { (try? await Self.invalidKeys(database)) == 1 }
            }
            #expect(marked, "the key marked invalid in the outage is not marked in the database")

            // Every request is one row in the shared log, none twice, including those served while it was down.
            let logged = try await TwoHosts.loggedRows(cluster.location, expected: sent, timeout: .seconds(60))
            #expect(logged.requests == logged.rows, "a request id logged twice")
            // Batches caught by the crash are committed once it is back, on both hosts.
            #expect(logged.rows == Int64(sent))
        }

        /// How many keys the shared database holds as invalid.
        private static func invalidKeys(_ database: PostgresProxyDatabase) async throws -> Int64 {
            try await database.connection { connection in
                let rows = try await connection.query(
                    "SELECT COUNT(*) FROM keys WHERE status = 'invalid'", logger: database.logger)
                for try await count in rows.decode(Int64.self) { return count }
                return 0
            }
        }

        /// In the outage: the admin API answers 503 `database_unavailable` (within TestHTTP's 30 s timeout, not a
        /// hang), and both ports' `/healthz` answer 200 with a body that says degraded.
        private func expectDegraded(_ host: ProxyService) async throws {
            let keys = try await TestHTTP.send(.GET, host.adminURL + "/api/keys", token: host.adminToken)
            #expect(keys.status == 503, "\(keys.body)")
            #expect(keys.errorCode == "database_unavailable")
            let admin = try await TestHTTP.send(.GET, host.adminURL + "/healthz")
            #expect(admin.status == 200)
            #expect(admin.json["status"] as? String == "degraded")
            #expect(admin.json["database"] as? String == "unreachable")
            // Each worker learns of the outage on its own (a lease, a limit count, or its bounded poll within 2 s)
            // and says so once; from then on each answers 200, degraded.
            let known = await eventually(timeout: .seconds(30)) {
                host.log.components(separatedBy: Self.unreachable).count - 1 == 2
            }
            #expect(known, "\(host.log)")
            for _ in 0..<6 {
                let health = try await TestHTTP.send(.GET, host.proxyURL + "/healthz")
                #expect(health.status == 200)
                #expect(health.json["status"] as? String == "degraded", "\(health.body)")
                #expect(health.json["database"] as? String == "unreachable")
                #expect(health.json["worker"] is Int)
            }
        }

        /// Once the database is back: the admin API serves again and both ports' `/healthz` say ok.
        private func expectRecovered(_ host: ProxyService) async throws {
            let served = try await eventually(timeout: .seconds(60)) {
                try await TestHTTP.send(.GET, host.adminURL + "/api/keys", token: host.adminToken).status == 200
            }
            #expect(served, "the admin API did not serve again")
            let admin = try await TestHTTP.send(.GET, host.adminURL + "/healthz")
            #expect(admin.json["status"] as? String == "ok")
            // Every worker said it is back (checked above), so every worker answers ok.
            for _ in 0..<6 {
                let health = try await TestHTTP.send(.GET, host.proxyURL + "/healthz")
                #expect(health.status == 200)
                #expect(health.json["status"] as? String == "ok", "\(health.body)")
            }
        }
    }
}
