import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared

/// `/metrics` through the real admin router.
@Suite("Metrics route")
struct MetricsRoutesTests {
    @Test("/metrics with the admin token shows key states, the spool, dropped rows and whether the collector answered")
    func withoutCollector() async throws {
        let harness = try AdminHarness()
        let test = harness.test
        _ = try await test.keys.add(name: "a", value: "sk-metrics-aaaaaaaa-0001")
        _ = try await test.keys.add(name: "b", value: "sk-metrics-bbbbbbbb-0002")
        try await test.database.pool.write { db in
            try db.execute(sql: "UPDATE keys SET status = 'cooling' WHERE id = 2")
        }
        var spool = UsageSpool(directory: test.directory.file("spool"), owner: "w0")
        var segment = try spool.create()
        try UsageSpool.append(Array("u2\tline\n".utf8), to: &segment)
        try UsageDropBoard(path: test.directory.file("usage-drops")).add(3, slot: 1)
        let spooled = segment.size
        try await harness.run { client in
            try await client.execute(uri: "/metrics", method: .get, headers: AdminHarness.bearer) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = String(buffer: response.body)
                for line in [
                    #"openai_proxy_keys{status="active"} 1.0"#,
                    #"openai_proxy_keys{status="cooling"} 1.0"#,
                    #"openai_proxy_keys{status="invalid"} 0.0"#,
                    #"openai_proxy_key_status{key="2",status="cooling"} 1.0"#,
                    #"openai_proxy_key_status{key="2",status="active"} 0.0"#,
                    "openai_proxy_usage_spool_bytes \(spooled).0",
                    "openai_proxy_usage_spool_files 1.0",
                    "openai_proxy_usage_rows_dropped_total 3",
                    "openai_proxy_collector_up 0.0",
                ] {
                    #expect(text.contains(line + "\n"), "missing: \(line)\n\(text)")
                }
                #expect(!text.contains("sk-metrics"))
            }
        }
        UsageSpool.remove(segment)
    }

    @Test(
        "/metrics needs the admin bearer token: none, a wrong one or a cookie session → 401; wrong ones are throttled")
    func needsToken() async throws {
        let harness = try AdminHarness()
        let session = try await harness.services.sessions.create(client: "t", now: harness.clock.now, lifetime: 60_000)
        try await harness.run { client in
            let none = try await client.call(.get, "/metrics", headers: [:])
            #expect(none.status == .unauthorized)
            #expect(none.object.keys.sorted() == ["error"])
            #expect(none.errorCode == "invalid_admin_token")
            #expect(!none.text.contains("openai_proxy_"))
            let cookie = try await client.call(.get, "/metrics", headers: AdminAuthTests.cookie(session.id))
            #expect(cookie.status == .unauthorized)
            for _ in 0..<5 {
                let wrong = try await client.call(.get, "/metrics", headers: [.authorization: "Bearer wrong-wrong"])
                #expect(wrong.status == .unauthorized)
            }
            let throttled = try await client.call(.get, "/metrics", headers: [.authorization: "Bearer wrong-wrong"])
            #expect(throttled.status == .tooManyRequests)
            let right = try await client.call(.get, "/metrics")
            #expect(right.status == .ok, "the right token is accepted from a throttled address")
            #expect(right.text.contains("openai_proxy_collector_up 0.0"))
        }
    }

    @Test("OPENAI_PROXY_METRICS_PUBLIC=true serves /metrics without a token")
    func publicMetrics() async throws {
        var configuration = ProxyConfiguration.defaults(cores: 2)
        configuration.metricsPublic = true
        let harness = try AdminHarness(configuration: configuration)
        try await harness.run { client in
            let open = try await client.call(.get, "/metrics", headers: [:])
            #expect(open.status == .ok)
            #expect(open.text.contains("openai_proxy_collector_up 0.0"))
        }
    }

    @Test("the label bounds read known models from the models table and the keys' model lists, and key ids")
    func boundsFromDatabase() async throws {
        let harness = try AdminHarness()
        let test = harness.test
        _ = try await test.keys.add(name: "a", value: "sk-metrics-aaaaaaaa-0001")
        _ = try await test.keys.add(name: "b", value: "sk-metrics-bbbbbbbb-0002")
        _ = try await harness.services.models.create(ModelEntry(name: "gpt-table"), audit: nil)
        try await test.database.pool.write { db in
            try db.execute(sql: #"UPDATE keys SET models = '["gpt-listed","gpt-table"]' WHERE id = 1"#)
            try db.execute(sql: "UPDATE keys SET models = 'not json' WHERE id = 2")
        }
        let bounds = try #require(await MetricsRoutes(services: harness.services).labelBounds())
        #expect(bounds.models.isSuperset(of: ["gpt-table", "gpt-listed"]))
        #expect(!bounds.models.contains("not json"))
        #expect(bounds.keys == ["1", "2"])
    }
}

/// `MetricsLabelBounds` on exposition text.
@Suite("Metrics label bounds")
struct MetricsLabelBoundsTests {
    static let bounds = MetricsLabelBounds(models: ["gpt-known", #"we"ird\name"#], keys: ["1", "2"])

    static func bounded(_ text: String) -> String {
        String(decoding: bounds.bound(Array(text.utf8)), as: UTF8.self)
    }

    @Test("known models and keys keep their labels; unknown ones become other and are summed")
    func merge() {
        let text = """
            # HELP openai_proxy_requests_total Requests served.
            # TYPE openai_proxy_requests_total counter
            openai_proxy_requests_total{key="1",model="gpt-known"} 4
            openai_proxy_requests_total{key="1",model="client-made-up-a"} 2
            openai_proxy_requests_total{key="1",model="client-made-up-b"} 3
            openai_proxy_requests_total{key="1",model="other"} 1
            openai_proxy_requests_total{key="9",model="gpt-known"} 5
            openai_proxy_requests_total{key="none",model="none"} 6
            openai_proxy_request_errors_total{key="2",model="x\\\"y",reason="http_404"} 7
            openai_proxy_collector_up 1.0
            openai_proxy_collector_lag_seconds 0.25

            """
        #expect(
            Self.bounded(text) == """
                # HELP openai_proxy_requests_total Requests served.
                # TYPE openai_proxy_requests_total counter
                openai_proxy_requests_total{key="1",model="gpt-known"} 4
                openai_proxy_requests_total{key="1",model="other"} 6
                openai_proxy_requests_total{key="other",model="gpt-known"} 5
                openai_proxy_requests_total{key="none",model="none"} 6
                openai_proxy_request_errors_total{key="2",model="other",reason="http_404"} 7
                openai_proxy_collector_up 1.0
                openai_proxy_collector_lag_seconds 0.25

                """)
    }

    @Test("escaped label values are compared unescaped and written back escaped")
    func escapes() {
        let line = #"openai_proxy_tokens_total{key="2",model="we\"ird\\name",kind="prompt"} 10"#
        #expect(Self.bounded(line) == line)
    }

    @Test("fractional values are summed as numbers; unreadable lines pass through")
    func fractionalAndUnreadable() {
        let text = """
            m_sum{model="a"} 0.5
            m_sum{model="b"} 1.25
            broken{model="a" 3
            stamped{model="a"} 1 1700000000
            """
        #expect(
            Self.bounded(text) == """
                m_sum{model="other"} 1.75
                broken{model="a" 3
                stamped{model="a"} 1 1700000000
                """)
    }

    @Test("a thousand client-chosen model names become one series")
    func bounded() {
        let lines = (0..<1000).map { #"openai_proxy_requests_total{key="1",model="spam-\#($0)"} 1"# }
        #expect(
            Self.bounded(lines.joined(separator: "\n")) == #"openai_proxy_requests_total{key="1",model="other"} 1000"#)
    }
}
