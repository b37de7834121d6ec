import Foundation
import GRDB
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Admin API: key tests")
struct AdminKeyTestTests {
    @Test("POST /api/keys/{id}/test probes now and moves the state; test-all runs in the background with progress")
    func keyTests() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        let good = "sk-admin-test-good-0001"
        let bad = "sk-admin-test-bad-00002"
        upstream.behave(.unauthorized, for: bad)
        var configuration = ProxyConfiguration.defaults(cores: 2)
        configuration.upstreamBaseURL = UpstreamBaseURL(parsing: upstream.baseURL)!
        let harness = try AdminHarness(configuration: configuration)
        _ = try await harness.test.keys.add(name: "good", value: good)
        _ = try await harness.test.keys.add(name: "bad", value: bad)
        _ = try await harness.test.keys.add(name: "off", value: "sk-admin-test-off-00003", status: .disabled)
        try await harness.run { client in
            let ok = try await client.call(.post, "/api/keys/1/test")
            #expect(ok.status == .ok)
            #expect(ok.object["ok"] as? Bool == true)
            #expect(ok.object["status"] as? Int == 200)
            #expect((ok.object["models"] as? [String])?.count == FakeUpstream.defaultModels.count)
            #expect(ok.object["error"] is NSNull)
            let failed = try await client.call(.post, "/api/keys/2/test")
            #expect(failed.object["ok"] as? Bool == false)
            #expect(failed.object["status"] as? Int == 401)
            #expect(failed.object["state_before"] as? String == "active")
            #expect(failed.object["state"] as? String == "invalid")
            #expect(!failed.text.contains("00002"))
            #expect(try await client.call(.post, "/api/keys/9/test").status == .notFound)
            #expect(try await client.call(.post, "/api/keys/abc/test").status == .badRequest)

            let started = try await client.call(.post, "/api/keys/test-all")
            #expect(started.status == .accepted)
            #expect(started.object["total"] as? Int == 2, "disabled keys are not probed")
            let run = try #require(started.object["run_id"] as? String)
            var progress = started
            #expect(
                try await eventually {
                    progress = try await client.call(.get, "/api/keys/test-all/\(run)")
                    return progress.object["finished"] as? Bool == true
                })
            #expect(progress.object["done"] as? Int == 2)
            #expect(progress.object["passed"] as? Int == 1)
            #expect(progress.object["failed"] as? Int == 1)
            #expect((progress.object["results"] as? [[String: Any]])?.map { $0["key_id"] as? Int } == [1, 2])
            #expect(try await client.call(.get, "/api/keys/test-all/nope").status == .notFound)
            let audit = try await client.call(.get, "/api/audit")
            #expect(audit.text.contains("key.test_all"))
        }
    }

    @Test("a test-all run under way when the admin server shuts down: probes in flight are recorded, none starts")
    func testAllOnShutdown() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        var configuration = ProxyConfiguration.defaults(cores: 2)
        configuration.upstreamBaseURL = UpstreamBaseURL(parsing: upstream.baseURL)!
        let harness = try AdminHarness(configuration: configuration)
        for index in 1...10 {
            let value = "sk-admin-test-slow-\(index)-000"
            upstream.behave(.slowFirstByte(.seconds(1)), for: value)
            _ = try await harness.test.keys.add(name: "slow\(index)", value: value)
        }
        let services = harness.services
        let run = await services.testRuns.start(total: 10)
        try await withRunningServices([services.keyTests]) {
            #expect(services.keyTests.start(.init(id: run, keys: Array(1...10))))
        }
        // The service returned: the first eight probes were under way and are recorded; the last two never began.
        let probed = try await harness.test.database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM keys WHERE last_probe_at IS NOT NULL")
        }
        #expect(probed == 8)
        #expect(upstream.requests.count == 8)
        let view = try #require(await services.testRuns.view(run))
        #expect(view.done == 8 && view.passed == 8 && view.finished)
        #expect(!services.keyTests.start(.init(id: run, keys: [1])), "no run starts once shut down")
    }
}
