import Foundation
import GRDB
import Testing

@testable import Shared

@Suite("Client token policy")
struct ClientTokenPolicyTests {
    @Test("expiry → 401, a model not allowed → 403, a used-up quota → 429; otherwise allowed")
    func check() {
        let limits = ClientTokenLimits(allowedModels: ["gpt-a"], rpmLimit: nil, tokenQuota: 100, expiresAt: 5000)
        #expect(ClientTokenPolicy.check(limits, model: "gpt-a", tokensUsed: 99, now: 4999) == .allow)
        #expect(ClientTokenPolicy.check(limits, model: nil, tokensUsed: 0, now: 0) == .allow, "no model to check")
        let expired = ClientTokenPolicy.check(limits, model: "gpt-a", tokensUsed: 0, now: 5000)
        #expect(expired == .expired)
        #expect(expired.status == 401 && expired.code == "token_expired")
        let model = ClientTokenPolicy.check(limits, model: "gpt-b", tokensUsed: 0, now: 0)
        #expect(model == .modelNotAllowed("gpt-b"))
        #expect(model.status == 403 && model.code == "model_not_allowed")
        let quota = ClientTokenPolicy.check(limits, model: "gpt-a", tokensUsed: 100, now: 0)
        #expect(quota == .quotaExceeded(quota: 100))
        #expect(quota.status == 429 && quota.retryAfterSeconds == nil)
        #expect(ClientTokenPolicy.check(ClientTokenLimits(), model: "any", tokensUsed: .max, now: .max) == .allow)
    }

    @Test("under an allow-list a model that cannot be read → 403; without one, or with no model at all, allowed")
    func unreadableModel() {
        let limits = ClientTokenLimits(allowedModels: ["gpt-a"])
        let unreadable = ClientTokenPolicy.check(limits, model: nil, modelReadable: false, tokensUsed: 0, now: 0)
        #expect(unreadable == .modelUnreadable)
        #expect(unreadable.status == 403 && unreadable.code == "model_unreadable")
        #expect(ClientTokenPolicy.check(limits, model: nil, modelReadable: true, tokensUsed: 0, now: 0) == .allow)
        #expect(
            ClientTokenPolicy.check(ClientTokenLimits(), model: nil, modelReadable: false, tokensUsed: 0, now: 0)
                == .allow)
        let expired = ClientTokenLimits(allowedModels: ["gpt-a"], expiresAt: 5)
        #expect(ClientTokenPolicy.check(expired, model: nil, modelReadable: false, tokensUsed: 0, now: 9) == .expired)
    }

    @Test("the RPM limit holds across workers: one shared count per token and minute, Retry-After to the minute's end")
    func rateWindows() async throws {
        let test = try TestDatabase()
        // Two handles on one file, as two worker processes have.
        let other = try ProxyDatabase.open(at: test.directory.file("test.db"), migrate: false)
        let workers = [TokenRateWindows(database: test.database), TokenRateWindows(database: other)]
        let start: Int64 = 1_800_000_000_000 + 15_000
        var decisions: [ClientTokenDecision] = []
        for index in 0..<4 {
            decisions.append(try await workers[index % 2].admit(tokenID: 7, limit: 3, now: start + Int64(index)))
        }
        #expect(decisions.prefix(3).allSatisfy { $0 == .allow })
        #expect(decisions[3] == .rateLimited(limit: 3, retryAfterSeconds: 45))
        #expect(decisions[3].status == 429 && decisions[3].code == "rate_limit_exceeded")
        #expect(try await workers[0].admit(tokenID: 8, limit: 3, now: start) == .allow, "per token")
        #expect(try await workers[1].admit(tokenID: 7, limit: 3, now: start + 45_000) == .allow, "a new minute")
        #expect(try await workers[0].requests(tokenID: 7, now: start + 45_000) == 1)
        let windows = try await test.database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM token_rate_windows WHERE token_id = 7")
        }
        #expect(windows == 1, "older windows are pruned")
    }

    @Test("changing a token's limits or a live setting moves the pool generation")
    func generation() async throws {
        let test = try TestDatabase()
        let (token, _) = try await test.tokens.create(name: "t", limits: ClientTokenLimits(rpmLimit: 5))
        let before = try await test.generation()
        _ = try await test.tokens.update(id: token.id!) { $0.rpmLimit = 10 }
        let afterLimit = try await test.generation()
        #expect(afterLimit > before)
        try await test.database.pool.write { db in
            try db.execute(sql: "UPDATE client_tokens SET request_count = request_count + 1")
        }
        #expect(try await test.generation() == afterLimit, "usage counters do not")
        try await test.database.pool.write { db in
            try db.execute(
                sql: "INSERT INTO settings (name, value, updated_at) VALUES ('rotation_strategy', 'random', 0)")
        }
        #expect(try await test.generation() > afterLimit)
        let stored = try await test.tokens.managed(id: token.id!)
        #expect(stored?.limits == ClientTokenLimits(rpmLimit: 10))
    }
}
