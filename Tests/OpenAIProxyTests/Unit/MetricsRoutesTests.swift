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
    @Test("/metrics is open and shows key states, the spool, dropped rows and whether the collector answered")
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
            try await client.execute(uri: "/metrics", method: .get) { response in
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
}
