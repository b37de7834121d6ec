import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import Synchronization
import Testing

extension RealService {
    /// The usage pipeline of the real service under load and under kill -9: every request a client saw
    /// complete has exactly one row, the aggregates are the sums of the rows, and the database is intact.
    @Suite("Usage pipeline", .serialized)
    struct UsagePipelineTests {
        private let keys = ["sk-usage-aaaaaaaaaaaa-0001", "sk-usage-bbbbbbbbbbbb-0002", "sk-usage-cccccccccccc-0003"]

        /// Requests sent by the load and the ones whose answer arrived whole.
        final class LoadRecord: Sendable {
            private let state = Mutex((sent: 0, completed: [String]()))
            private let stopped = Atomic<Bool>(false)

            /// Tells the clients to stop.
            func stop() { stopped.store(true, ordering: .relaxed) }
            /// Whether the clients were told to stop.
            var isStopped: Bool { stopped.load(ordering: .relaxed) }
            /// Counts a request sent.
            func sent() { state.withLock { $0.sent += 1 } }
            /// Notes a request whose answer arrived whole.
            func completed(_ model: String) { state.withLock { $0.completed.append(model) } }
            /// Requests sent, and the models of those completed.
            var counts: (sent: Int, completed: [String]) { state.withLock { ($0.sent, $0.completed) } }
        }

        /// A running service with 2 workers and 3 keys, its fake upstream, and a client token.
        private func running(_ body: (ProxyService, String) async throws -> Void) async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            // Every request names its own model: the keys' model lists stay unknown, so any model goes.
            upstream.withoutModelList()
            // Metadata chat history, so its rows are held to one per request under kill -9 too.
            let service = ProxyService(
                upstream: upstream.baseURL, workers: 2, extra: ["OPENAI_PROXY_CHAT_HISTORY": "metadata"])
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start()
            do {
                try await body(service, token)
            } catch {
                print(service.log)
                throw error
            }
        }

        @Test("kill -9 of the collector twice and of a worker under load: one row per completed request, exact sums")
        func lossless() async throws {
            try await running { service, token in try await lossless(service, token: token) }
        }

        private func lossless(_ service: ProxyService, token: String) async throws {
            let record = LoadRecord()
            // 6 clients, each request with a model name of its own, so the row of every request can be found.
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for client in 0..<6 {
                        group.addTask {
                            var index = 0
                            while !record.isStopped, index < 20_000 {
                                index += 1
                                let model = "load-\(client)-\(index)"
                                record.sent()
                                guard
                                    let answer = try? await TestHTTP.chat(service, token: token, model: model),
                                    answer.status == 200, answer.body.contains("hello from upstream")
                                else { continue }
                                record.completed(model)
                            }
                        }
                    }
                }
            }
            func collectorPID() -> pid_t? { service.children().first { $0.command.hasSuffix(" collector") }?.pid }
            func waitForProgress(_ more: Int) async -> Bool {
                let start = record.counts.completed.count
                return await eventually(timeout: .seconds(15)) { record.counts.completed.count >= start + more }
            }
            #expect(await waitForProgress(500))
            for round in 0..<3 {
                let victim: pid_t?
                if round == 1 {
                    victim = service.workerPIDs().first
                } else {
                    victim = collectorPID()
                }
                let pid = try #require(victim)
                kill(pid, SIGKILL)
                #expect(await eventually { !ProcessTable.isAlive(pid) })
                // Serve on for a while with the collector (or the worker) gone and back.
                #expect(await waitForProgress(800), "the service stopped serving after kill \(round)")
            }
            record.stop()
            await load.value
            let (sent, completed) = record.counts
            print("measured: \(sent) requests sent, \(completed.count) completed, under 3 kills")

            let database = try DatabaseQueue(path: service.databasePath)
            // After recovery every completed request has its row (the spools replayed, the collector caught up).
            let landed = await eventually(timeout: .seconds(30)) {
                let rows = try? await database.read { db in
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM usage_log WHERE status = 200 AND model LIKE 'load-%'")
                }
                return (rows ?? 0) >= completed.count
            }
            #expect(landed)
            #expect(await service.stop() == 0)
            try await database.read { db in
                let models = Set(try String.fetchAll(db, sql: "SELECT model FROM usage_log WHERE model LIKE 'load-%'"))
                let missing = completed.filter { !models.contains($0) }
                #expect(missing.isEmpty, "completed requests without a row: \(missing.prefix(10))")
                let twice = try String.fetchAll(
                    db, sql: "SELECT model FROM usage_log GROUP BY model HAVING COUNT(*) > 1 LIMIT 10")
                #expect(twice.isEmpty, "requests with more than one row: \(twice)")
                // Rows beyond the completed ones are requests cut by the worker kill: at most one per client.
                let rows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") ?? 0
                #expect(rows >= completed.count && rows <= sent)

                let log = try #require(
                    try Row.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) AS requests, SUM(status >= 400 OR error IS NOT NULL) AS failures,
                                TOTAL(prompt_tokens) AS prompt, TOTAL(completion_tokens) AS completion,
                                TOTAL(latency_ms) AS latency
                            FROM usage_log
                            """))
                let hourly = try #require(
                    try Row.fetchOne(
                        db,
                        sql: """
                            SELECT SUM(requests) AS requests, SUM(failures) AS failures, TOTAL(prompt_tokens) AS prompt,
                                TOTAL(completion_tokens) AS completion, TOTAL(latency_ms_sum) AS latency
                            FROM usage_hourly
                            """))
                #expect(log["requests"] as Int64 == hourly["requests"] as Int64)
                #expect(log["failures"] as Int64 == hourly["failures"] as Int64)
                #expect(log["prompt"] as Double == hourly["prompt"] as Double)
                #expect(log["completion"] as Double == hourly["completion"] as Double)
                #expect(
                    abs((log["latency"] as Double) - (hourly["latency"] as Double)) < 0.001 * (log["latency"] as Double)
                )
                let keyed = try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log WHERE key_id IS NOT NULL")
                #expect(try Int64.fetchOne(db, sql: "SELECT SUM(usage_count) FROM keys") == keyed)
                // Metadata chat history: one row per proxied chat request, without texts.
                #expect(try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM chat_history") == keyed)
                #expect(
                    try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM chat_history WHERE request IS NOT NULL") == 0)
                #expect(try String.fetchOne(db, sql: "PRAGMA integrity_check") == "ok")
            }
            let spool = try FileManager.default.contentsOfDirectory(atPath: service.directory.file("data") + "/spool")
            #expect(spool.filter { $0.hasSuffix(".spool") }.isEmpty, "spool files left: \(spool)")
        }

        @Test("/metrics on the admin port covers requests, tokens, key states, the spool and the collector")
        func metrics() async throws {
            try await running { service, token in try await metrics(service, token: token) }
        }

        private func metrics(_ service: ProxyService, token: String) async throws {
            let metricsURL = service.adminURL + "/metrics"
            // Only models the service knows keep their label; the one below is in the models table.
            let known = try await TestHTTP.send(
                .POST, service.adminURL + "/api/models", token: service.adminToken,
                json: #"{"model_name":"gpt-metrics"}"#)
            #expect(known.status == 201)
            for _ in 0..<5 {
                #expect(try await TestHTTP.chat(service, token: token, model: "gpt-metrics").status == 200)
            }
            _ = try await TestHTTP.chat(service, token: token, model: "made-up-by-a-client")
            #expect(try await TestHTTP.chat(service, token: "sk-proxy-wrong").status == 401)
            #expect(try await TestHTTP.send(.GET, metricsURL).status == 401, "/metrics needs the admin token")
            var text = ""
            #expect(
                await eventually {
                    text = (try? await TestHTTP.send(.GET, metricsURL, token: service.adminToken).body) ?? ""
                    return Self.value(in: text, of: #"openai_proxy_request_duration_seconds_count{streamed="false"}"#)
                        == 6
                        && Self.value(in: text, of: #"openai_proxy_refused_requests_total{reason="invalid_token"}"#)
                            == 1
                })
            let requests = ["1", "2", "3"].map { key in
                Self.value(in: text, of: #"openai_proxy_requests_total{key="\#(key)",model="gpt-metrics"}"#) ?? 0
            }
            #expect(requests.reduce(0, +) == 5)
            let others = ["none", "1", "2", "3"].map { key in
                Self.value(in: text, of: #"openai_proxy_requests_total{key="\#(key)",model="other"}"#) ?? 0
            }
            #expect(others.reduce(0, +) == 1)
            #expect(!text.contains("made-up-by-a-client"))
            // Refused before a token was known: counted by reason, not as a served request.
            #expect(
                Self.value(in: text, of: #"openai_proxy_refused_requests_total{reason="invalid_token"}"#) == 1)
            #expect(!text.contains(#"reason="unauthorized""#))
            #expect(Self.value(in: text, of: #"openai_proxy_keys{status="active"}"#) == 3)
            #expect(Self.value(in: text, of: #"openai_proxy_key_status{key="1",status="active"}"#) == 1)
            #expect(Self.value(in: text, of: #"openai_proxy_key_status{key="1",status="cooling"}"#) == 0)
            #expect(Self.value(in: text, of: "openai_proxy_collector_up") == 1)
            #expect(Self.value(in: text, of: "openai_proxy_usage_spool_bytes") == 0)
            #expect(text.contains(#"openai_proxy_tokens_total{key="2",model="gpt-metrics",kind="prompt"}"#))
            #expect(Self.value(in: text, of: "openai_proxy_usage_rows_dropped_total") == 0)
            #expect(Self.value(in: text, of: #"openai_proxy_request_duration_seconds_count{streamed="false"}"#) == 6)
            #expect(text.contains("openai_proxy_collector_commit_seconds_bucket"))
            #expect(text.contains("openai_proxy_collector_batch_rows_count"))
            #expect(text.contains("openai_proxy_collector_lag_seconds"))

            #expect(await service.stop() == 0)
        }

        /// The value of the sample `series` in a Prometheus text exposition.
        static func value(in text: String, of series: String) -> Double? {
            for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
                return Double(line.dropFirst(series.count + 1))
            }
            return nil
        }
    }
}
