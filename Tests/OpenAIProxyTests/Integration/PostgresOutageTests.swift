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
        static let reachable = "PostgreSQL reachable again"

        @Test(
            "with PostgreSQL crashed both hosts keep serving; once it is back no usage row is logged twice",
            arguments: StoreEngine.tested.filter { $0 == .postgresql })
        func outage(engine: StoreEngine) async throws {
            let cluster = try await CrashablePostgresCluster.start()
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let shared = [
                "OPENAI_PROXY_DATABASE_URL": cluster.location.url, "SECRET_KEY": "outage-secret-0123456789abcdef0123",
            ]
            let hostA = ProxyService(upstream: upstream.baseURL, workers: 2, extra: shared)
            let hostB = ProxyService(upstream: upstream.baseURL, workers: 2, extra: shared)
            try hostA.addKeys(Self.keys)
            let token = try hostA.createToken()
            try await hostA.start()
            try await hostB.start()
            do {
                try await exercise([hostA, hostB], cluster: cluster, upstream: upstream, token: token)
            } catch {
                print("host A:\n\(hostA.log)\nhost B:\n\(hostB.log)")
                throw error
            }
            #expect(await hostA.stop() == 0)
            #expect(await hostB.stop() == 0)
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

            // Back on the same directory and port: each worker's poll finds it and says so once.
            try cluster.restart()
            for host in hosts {
                let unreachable = host.log.components(separatedBy: Self.unreachable).count - 1
                let back = await eventually(timeout: .seconds(30)) {
                    host.log.components(separatedBy: Self.reachable).count - 1 == unreachable
                }
                #expect(back, "\(host.log)")
            }
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
            let logged = try await PostgresProxyDatabase.withRunning(cluster.location, logger: Logger(label: "test")) {
                database in
                var counts: (rows: Int64, requests: Int64) = (0, 0)
                _ = await eventually(timeout: .seconds(60)) {
                    counts = (try? await Self.counts(database)) ?? counts
                    return counts.rows >= Int64(sent)
                }
                return counts
            }
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

        /// The request log's rows, and its distinct request ids.
        private static func counts(_ database: PostgresProxyDatabase) async throws -> (rows: Int64, requests: Int64) {
            try await database.connection { connection in
                let rows = try await connection.query(
                    "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM usage_log", logger: database.logger)
                for try await (all, distinct) in rows.decode((Int64, Int64).self) { return (all, distinct) }
                return (0, 0)
            }
        }
    }
}
