import Foundation
import GRDB
import Testing

extension RealService {
    /// Hostile clients: a flood of requests refused before a token is known, and parallel requests racing
    /// a client token's quota.
    @Suite("Unauthenticated floods and quota races", .serialized)
    struct UnauthenticatedFloodTests {
        /// Pages the database uses (WAL included, as a reader sees it), in bytes.
        private func usedBytes(_ database: DatabaseQueue) async throws -> Int64 {
            try await database.read { db in
                let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0
                return (pages - free) * size
            }
        }

        @Test("5,000 refused requests with 3.5 KB paths grow the database by < 100 KB and show in the API and /metrics")
        func flood() async throws {
            let service = try await ProxyService.serving(keys: ["sk-flood-key-000000001"]) { service, _, token in
                #expect(try await TestHTTP.chat(service, token: token).status == 200)
                let database = try service.writableDatabase()
                #expect(
                    await eventually {
                        (try? await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") })
                            == 1
                    })
                let before = try await usedBytes(database)

                let long = String(repeating: "x", count: 3500)
                // 3,000 wrong tokens, 1,000 without a token, 1,000 outside /v1; 16 at a time.
                let plan = (0..<5000).map { index -> (path: String, token: String?) in
                    switch index % 5 {
                    case 0: return ("/v1/" + long, nil)
                    case 1: return ("/" + long, token)
                    default: return ("/v1/" + long, "sk-wrong-token")
                    }
                }
                let started = ContinuousClock.now
                let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                    for lane in 0..<16 {
                        group.addTask {
                            var seen: [Int] = []
                            for index in stride(from: lane, to: plan.count, by: 16) {
                                let (path, token) = plan[index]
                                seen.append(try await TestHTTP.send(.GET, service.proxyURL + path, token: token).status)
                            }
                            return seen
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
                print("measured: 5,000 refused requests in \(ContinuousClock.now - started)")
                #expect(statuses.filter { $0 == 401 }.count == 4000)
                #expect(statuses.filter { $0 == 404 }.count == 1000)

                let expected = ["invalid_token": 3000, "missing_token": 1000, "unknown_path": 1000]
                var answer: [String: Any] = [:]
                #expect(
                    await eventually(timeout: .seconds(20)) {
                        answer =
                            (try? await TestHTTP.send(
                                .GET, service.adminURL + "/api/stats/refused?period=today", token: service.adminToken
                            ).json) ?? [:]
                        return answer["by_reason"] as? [String: Int] == expected
                    }, "\(answer)")
                #expect(answer["total"] as? Int == 5000)
                let grown = try await usedBytes(database) - before
                print("measured: database grew by \(grown) bytes for 5,000 refused requests")
                #expect(grown < 100 * 1024)
                let (logged, longestSource, countRows) = try await database.read { db in
                    (
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") ?? 0,
                        try Int.fetchOne(db, sql: "SELECT MAX(LENGTH(source)) FROM refused_requests") ?? 0,
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM refused_requests") ?? 0
                    )
                }
                #expect(logged == 1)
                #expect(longestSource < 64)
                // A few rows per minute, reason and worker, whatever the flood.
                #expect(countRows <= 3 * 2 * 3)
                let metrics = try await TestHTTP.send(.GET, service.adminURL + "/metrics", token: service.adminToken)
                    .body
                for (reason, count) in expected {
                    #expect(
                        UsagePipelineTests.value(
                            in: metrics, of: #"openai_proxy_refused_requests_total{reason="\#(reason)"}"#)
                            == Double(count))
                }
            }
            // One sample per reason and minute in the log (all of it, once stopped), never the whole path.
            #expect(service.log.contains("request refused before authentication"))
            #expect(!service.log.contains(String(repeating: "x", count: 100)))
        }

        @Test("parallel requests of a token with a small quota overshoot it by at most one request")
        func quotaRace() async throws {
            let key = "sk-quota-race-00000001"
            try await ProxyService.serving(keys: [key]) { service, upstream, token in
                // Slow answers keep every request of a wave in flight at once.
                upstream.behave(.slowFirstByte(.milliseconds(300)), for: key)
                let database = try service.writableDatabase()
                try await database.write { db in try db.execute(sql: "UPDATE client_tokens SET token_quota = 100") }
                try await Task.sleep(for: .milliseconds(700))

                // Each answer uses 18 tokens; each request reserves about 20 (its body) + 7 (max_tokens).
                let body = #"{"model":"gpt-test","max_tokens":7,"messages":[{"role":"user","content":"hi"}]}"#
                var served = 0
                var codes: [String: Int] = [:]
                // Waves until the quota reads as used up: the served answers' counts reach the token's row through
                // the collector, and meanwhile their requests' reservations refuse the rest as reserved. Paced and
                // bounded by time, not by a number of waves: refused waves take milliseconds, and fifteen of them
                // could end before the counts arrived (seen on a loaded machine: 6 served, 294 reserved).
                let deadline = ContinuousClock.now + .seconds(20)
                while ContinuousClock.now < deadline {
                    let answers = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                        for _ in 0..<20 {
                            group.addTask {
                                try await TestHTTP.send(
                                    .POST, service.proxyURL + "/v1/chat/completions", token: token, json: body)
                            }
                        }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    served += answers.filter { $0.status == 200 }.count
                    for answer in answers where answer.status != 200 { codes[answer.errorCode ?? "?", default: 0] += 1 }
                    if answers.allSatisfy({ $0.errorCode == "token_quota_exceeded" }) { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                print("measured: quota race served \(served), refused \(codes)")
                #expect(codes["token_quota_exceeded", default: 0] > 0)
                #expect(Set(codes.keys).isSubset(of: ["token_quota_exceeded", "token_quota_reserved"]))
                // Without reservations a single wave of 20 would have used 360 tokens.
                let used = try #require(
                    await eventuallyValue {
                        try? await database.read { db in
                            try Int.fetchOne(db, sql: "SELECT prompt_tokens + completion_tokens FROM client_tokens")
                        }
                    } until: {
                        $0 == served * 18
                    })
                #expect(used >= 100 && used <= 100 + 18, "used \(used)")
                #expect(
                    try await database.read { db in
                        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM token_quota_reservations")
                    } == 0)
            }
        }

        /// The value `read` gives once `done` holds for it (within 10 s), else nil.
        private func eventuallyValue<T: Sendable>(
            _ read: () async -> T?, until done: (T) -> Bool
        ) async -> T? {
            var last: T?
            _ = await eventually {
                last = await read()
                return last.map(done) ?? false
            }
            return last.flatMap { done($0) ? $0 : nil }
        }
    }
}
