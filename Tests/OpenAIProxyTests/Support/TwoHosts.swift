import Logging
import Testing

@testable import Shared

/// Two gateway installations (own data directories and ports, 2 workers each) on one PostgreSQL database, as the
/// multi-host suites run them, and what they read back from its shared request log.
enum TwoHosts {
    /// Starts two hosts on `databaseURL` sharing `secret`, with `keys` and a client token added through the first
    /// one's CLI; runs `body` with both and the token, printing both logs if it throws; then stops both.
    static func run(
        databaseURL: String, secret: String, upstream: FakeUpstream, keys: [String],
        _ body: (ProxyService, ProxyService, String) async throws -> Void
    ) async throws {
        let shared = ["OPENAI_PROXY_DATABASE_URL": databaseURL, "SECRET_KEY": secret]
        let hostA = ProxyService(upstream: upstream.baseURL, workers: 2, extra: shared)
        let hostB = ProxyService(upstream: upstream.baseURL, workers: 2, extra: shared)
        try hostA.addKeys(keys)
        let token = try hostA.createToken()
        try await hostA.start()
        try await hostB.start()
        do {
            try await body(hostA, hostB, token)
        } catch {
            print("host A:\n\(hostA.log)\nhost B:\n\(hostB.log)")
            throw error
        }
        #expect(await hostA.stop() == 0)
        #expect(await hostB.stop() == 0)
    }

    /// The shared request log's rows and distinct request ids, read once it holds `expected` rows, or when
    /// `timeout` has passed.
    static func loggedRows(
        _ location: PostgresLocation, expected: Int, timeout: Duration
    ) async throws -> (rows: Int64, requests: Int64) {
        try await PostgresProxyDatabase.withRunning(location, logger: Logger(label: "test")) { database in
            var counts: (rows: Int64, requests: Int64) = (0, 0)
            _ = await eventually(timeout: timeout) {
                counts = (try? await Self.counts(database)) ?? counts
                return counts.rows >= Int64(expected)
            }
            return counts
        }
    }

    private static func counts(_ database: PostgresProxyDatabase) async throws -> (rows: Int64, requests: Int64) {
        try await database.connection { connection in
            let rows = try await connection.query(
                "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM usage_log", logger: database.logger)
            for try await (all, distinct) in rows.decode((Int64, Int64).self) { return (all, distinct) }
            return (0, 0)
        }
    }
}
