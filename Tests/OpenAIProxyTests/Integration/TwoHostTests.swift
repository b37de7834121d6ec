import Foundation
import Logging
import Testing

@testable import Shared

extension RealService {
    /// Two gateway installations (own data directories and ports, 2 workers each, one secret) on one PostgreSQL
    /// database, in front of one upstream: one pool, one rotation, one set of limits, one request log.
    @Suite("Two hosts on PostgreSQL", .serialized)
    struct TwoHostTests {
        static let keys = ["sk-twohost-aaaaaaaa-0001", "sk-twohost-bbbbbbbb-0002", "sk-twohost-cccccccc-0003"]

        @Test(
            "keys and tokens added on A serve on B; fair rotation; a disabled key, an rpm_limit, the log; one secret",
            arguments: StoreEngine.tested.filter { $0 == .postgresql })
        func twoHosts(engine: StoreEngine) async throws {
            try await PostgresTestCluster.withFreshDatabase { location in
                let upstream = try await FakeUpstream.start()
                defer { upstream.stop() }
                let secret = "two-hosts-secret-0123456789abcdef"
                try await TwoHosts.run(
                    databaseURL: location.url, secret: secret, upstream: upstream, keys: Self.keys
                ) { hostA, hostB, token in
                    try await exercise(hostA, hostB, upstream: upstream, token: token, location: location)
                    // A third host set up with a secret of its own is refused in one line: it could not open the keys.
                    let foreign = ProxyService(
                        upstream: upstream.baseURL, workers: 2,
                        extra: [
                            "OPENAI_PROXY_DATABASE_URL": location.url,
                            "SECRET_KEY": "another-hosts-secret-0123456789ab",
                        ])
                    try await foreign.start(waitUntilReady: false)
                    let ended = await eventually(timeout: .seconds(30)) { foreign.exitStatus != nil }
                    if !ended { _ = await foreign.stop() }
                    #expect(ended && foreign.exitStatus == 1)
                    let refusal = "openai-proxy: SECRET_KEY is not this installation's secret"
                    // Its output is read as it comes: wait for the last of it.
                    #expect(await eventually { foreign.log.contains(refusal) }, "\(foreign.log)")
                }
            }
        }

        private func exercise(
            _ hostA: ProxyService, _ hostB: ProxyService, upstream: FakeUpstream, token: String,
            location: PostgresLocation
        ) async throws {
            let hosts = [hostA, hostB]
            var sent = 0

            // Added on A (through its CLI), served by B.
            #expect(try await TestHTTP.chat(hostB, token: token).status == 200)
            sent += 1

            // Each host's chat console works: both derive the one internal token from the shared secret, so the
            // host started last did not replace the other's.
            let chat = #"{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}"#
            let refreshed = try await TestHTTP.send(
                .GET, hostA.adminURL + "/api/models?refresh=true", token: hostA.adminToken)
            #expect(refreshed.status == 200)
            for host in hosts {
                let answered = await eventually(timeout: .seconds(10)) {
                    (try? await TestHTTP.send(.POST, host.adminURL + "/api/chat", token: host.adminToken, json: chat))?
                        .status == 200
                }
                #expect(answered, "the chat console of \(host.adminURL)")
                sent += 1
            }

            // 300 requests alternating between the hosts: the one cursor keeps the three keys in turn.
            let before = upstream.keyCounts
            for index in 0..<300 {
                #expect(try await TestHTTP.chat(hosts[index % 2], token: token).status == 200)
            }
            sent += 300
            let after = upstream.keyCounts
            for key in Self.keys {
                let used = (after[key] ?? 0) - (before[key] ?? 0)
                #expect(abs(used - 100) <= 3, "\(key): \(used) of 300 — \(after)")
            }

            // A key disabled on A is unused by B within 1 s.
            let keys = try await TestHTTP.send(.GET, hostA.adminURL + "/api/keys", token: hostA.adminToken)
            let listed = (try JSONSerialization.jsonObject(with: Data(keys.body.utf8)) as? [[String: Any]]) ?? []
            let disabledID = try #require(listed.first { $0["name"] as? String == "key0" }?["id"] as? Int)
            let disable = try await TestHTTP.send(
                .PUT, hostA.adminURL + "/api/keys/\(disabledID)", token: hostA.adminToken,
                json: #"{"status":"disabled"}"#)
            #expect(disable.status == 200, "\(disable.body)")
            try await Task.sleep(for: .seconds(1))
            let beforeDisabled = upstream.keyCounts[Self.keys[0]] ?? 0
            for _ in 0..<30 {
                #expect(try await TestHTTP.chat(hostB, token: token).status == 200)
            }
            sent += 30
            #expect(upstream.keyCounts[Self.keys[0]] ?? 0 == beforeDisabled, "the disabled key served on B")

            // An rpm_limit of 20, set on B, lets 20 of 40 requests spread over both hosts through.
            let tokens = try await TestHTTP.send(.GET, hostB.adminURL + "/api/tokens", token: hostB.adminToken)
            let tokenList = (try JSONSerialization.jsonObject(with: Data(tokens.body.utf8)) as? [[String: Any]]) ?? []
            let tokenID = try #require(tokenList.first { $0["name"] as? String == "test" }?["id"] as? Int)
            let limit = try await TestHTTP.send(
                .PUT, hostB.adminURL + "/api/tokens/\(tokenID)", token: hostB.adminToken, json: #"{"rpm_limit":20}"#)
            #expect(limit.status == 200, "\(limit.body)")
            // The limit counts per wall-clock minute: start the burst well inside one.
            try await Task.sleep(for: .seconds(1))
            let second = Int(Date().timeIntervalSince1970) % 60
            if second > 40 { try await Task.sleep(for: .seconds(61 - second)) }
            var statuses: [Int] = []
            for index in 0..<40 {
                statuses.append(try await TestHTTP.chat(hosts[index % 2], token: token).status)
            }
            sent += 40
            #expect(statuses.filter { $0 == 200 }.count == 20, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 20, "\(statuses)")

            // Every request is exactly one row in the shared request log, whichever host's collector wrote it.
            let logged = try await TwoHosts.loggedRows(location, expected: sent, timeout: .seconds(15))
            #expect(logged.rows == Int64(sent))
            #expect(logged.requests == Int64(sent), "a request id logged twice")

            // Either host's admin API reads the shared log and state: the request log's total, the statistics,
            // and /metrics with the disabled key.
            for host in hosts {
                let usage = try await TestHTTP.send(.GET, host.adminURL + "/api/usage?limit=1", token: host.adminToken)
                #expect(usage.status == 200 && usage.body.contains("\"total\":\(sent)"), "\(usage.body.prefix(300))")
                let overview = try await TestHTTP.send(
                    .GET, host.adminURL + "/api/stats/overview", token: host.adminToken)
                #expect(overview.status == 200, "\(overview.body.prefix(300))")
                let metrics = try await TestHTTP.send(.GET, host.adminURL + "/metrics", token: host.adminToken)
                #expect(metrics.status == 200)
                #expect(
                    metrics.body.contains(#"openai_proxy_keys{status="disabled"} 1"#), "\(metrics.body.prefix(2000))")
            }
        }
    }
}

extension PostgresLocation {
    /// The location as `OPENAI_PROXY_DATABASE_URL` takes it, password included.
    var url: String {
        let password = self.password.map {
            ":" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)
        }
        return "postgresql://\(user)\(password ?? "")@\(host):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }
}
