import Foundation
import GRDB
import Testing

extension RealService {
    /// Client token limits set through the admin API's tables, enforced by every worker.
    @Suite("Client token limits", .serialized)
    struct ClientTokenLimitTests {
        private func update(_ service: ProxyService, _ sql: String) async throws {
            let database = try service.writableDatabase()
            try await database.write { db in try db.execute(sql: sql) }
            // Workers reload within 250 ms of the generation moving.
            try await Task.sleep(for: .milliseconds(700))
        }

        @Test("allowed models → 403, expiry → 401, per-minute limit across workers → 429 Retry-After, quota → 429")
        func limits() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            try service.addKeys(["sk-token-limits-000001"])
            let token = try service.createToken()
            try await service.start()

            try await update(service, #"UPDATE client_tokens SET allowed_models = '["gpt-test"]'"#)
            let denied = try await TestHTTP.chat(service, token: token, model: "gpt-4o")
            #expect(denied.status == 403)
            #expect(denied.errorCode == "model_not_allowed")
            #expect(try await TestHTTP.chat(service, token: token, model: "gpt-test").status == 200)

            try await update(service, "UPDATE client_tokens SET allowed_models = NULL, rpm_limit = 3")
            var statuses: [Int] = []
            var waits: [String] = []
            for _ in 0..<6 {
                let answer = try await TestHTTP.chat(service, token: token)
                statuses.append(answer.status)
                if let wait = answer.headers.first(name: "retry-after") { waits.append(wait) }
            }
            // A minute boundary may fall inside the burst: then a fresh window lets up to 3 more through.
            #expect(statuses.filter { $0 == 200 }.count >= 3 && statuses.filter { $0 == 200 }.count <= 6)
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 429 })
            #expect(waits.count == statuses.filter { $0 == 429 }.count)
            #expect(waits.allSatisfy { (Int($0) ?? 0) >= 1 && (Int($0) ?? 0) <= 60 })

            // A quota 20 tokens above what the token used so far (once the collector counted every answer).
            try await Task.sleep(for: .seconds(1))
            try await update(
                service,
                "UPDATE client_tokens SET rpm_limit = NULL, token_quota = prompt_tokens + completion_tokens + 20")
            #expect(try await TestHTTP.chat(service, token: token).status == 200)
            // 18 tokens per answer: once the collector counted two more answers, the quota is spent.
            #expect(
                try await eventually {
                    try await TestHTTP.chat(service, token: token).errorCode == "token_quota_exceeded"
                })

            try await update(service, "UPDATE client_tokens SET token_quota = NULL, expires_at = 1000")
            let expired = try await TestHTTP.chat(service, token: token)
            #expect(expired.status == 401)
            #expect(expired.errorCode == "token_expired")
            #expect(await service.stop() == 0)
        }

        @Test("GET /v1/models is answered from the models table once it has rows, else forwarded")
        func modelList() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try service.addKeys(["sk-token-models-000001"])
            let token = try service.createToken()
            try await service.start()
            let forwarded = try await TestHTTP.send(.GET, service.proxyURL + "/v1/models", token: token)
            #expect(forwarded.status == 200)
            #expect(forwarded.body.contains("\"gated\""))
            try await update(
                service,
                """
                INSERT INTO models (model_name, enabled, source, created_at, updated_at)
                VALUES ('ours-a', 1, 'manual', '2026-01-01 00:00:00', '2026-01-01 00:00:00'),
                       ('ours-b', 0, 'manual', '2026-01-01 00:00:00', '2026-01-01 00:00:00')
                """)
            let before = upstream.traffic.count
            let local = try await TestHTTP.send(.GET, service.proxyURL + "/v1/models", token: token)
            #expect(local.status == 200)
            let data = try #require(local.json["data"] as? [[String: Any]])
            #expect(data.map { $0["id"] as? String } == ["ours-a"])
            #expect(local.json["object"] as? String == "list")
            #expect(upstream.traffic.count == before)
            #expect(try await TestHTTP.send(.GET, service.proxyURL + "/v1/models").status == 401)
            #expect(await service.stop() == 0)
        }
    }
}

extension RealService {
    /// Live settings (`PUT /api/settings` writes the `settings` table) applied by running workers.
    @Suite("Live settings", .serialized)
    struct LiveSettingsTests {
        @Test("max_body_bytes and first_byte_timeout_seconds set live are applied by every worker within 1 s")
        func applied() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let slow = "sk-live-settings-slow-01"
            let quick = "sk-live-settings-quick-2"
            upstream.behave(.slowFirstByte(.seconds(4)), for: slow)
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            try service.addKeys([slow, quick])
            let token = try service.createToken()
            try await service.start()
            let big =
                #"{"model":"gpt-test","messages":[{"role":"user","content":""# + String(repeating: "x", count: 3000)
                + #""}]}"#
            #expect(
                try await TestHTTP.send(.POST, service.proxyURL + "/v1/chat/completions", token: token, json: big)
                    .status
                    == 200)

            let database = try service.writableDatabase()
            try await database.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO settings (name, value, updated_at) VALUES
                        ('max_body_bytes', '2048', 0), ('first_byte_timeout_seconds', '1', 0)
                        """)
            }
            try await Task.sleep(for: .milliseconds(1000))
            let refused = try await TestHTTP.send(
                .POST, service.proxyURL + "/v1/chat/completions", token: token, json: big)
            #expect(refused.status == 413)
            #expect(refused.body.contains("2048 bytes"))
            // The slow key (4 s) now misses the 1 s first-byte deadline: the other key answers, the slow one is
            // marked (with the 300 s default it would have answered).
            for _ in 0..<3 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            let failures = try await database.read { db in
                try Int.fetchOne(db, sql: "SELECT consecutive_failures FROM keys WHERE name = 'key0'")
            }
            #expect((failures ?? 0) >= 1)
            #expect(await service.stop() == 0)
        }
    }
}
