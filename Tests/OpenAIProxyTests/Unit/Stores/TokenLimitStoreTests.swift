import Testing

@testable import Shared
@testable import StatsCollector

/// `TokenRateWindowing` and `TokenQuotaReserving` on every engine: the counts an `rpm_limit` and a `token_quota`
/// are decided on, shared by every worker of every host.
@Suite("Token limit stores")
struct TokenLimitStoreTests {
    static let start: Int64 = 1_800_000_000_000 + 15_000

    @Test(
        "an RPM window admits exactly the limit, then Retry-After runs to the minute's end",
        arguments: StoreEngine.tested)
    func rateWindow(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let windows = stores.rateWindows
            var decisions: [ClientTokenDecision] = []
            for index in 0..<4 {
                decisions.append(try await windows.admit(tokenID: 7, limit: 3, now: Self.start + Int64(index)))
            }
            #expect(decisions.prefix(3).allSatisfy { $0 == .allow })
            #expect(decisions[3] == .rateLimited(limit: 3, retryAfterSeconds: 45))
            #expect(try await windows.admit(tokenID: 8, limit: 3, now: Self.start) == .allow, "per token")
            #expect(try await windows.requests(tokenID: 7, now: Self.start) == 4)
            #expect(try await windows.admit(tokenID: 7, limit: 3, now: Self.start + 45_000) == .allow, "a new minute")
            #expect(try await windows.requests(tokenID: 7, now: Self.start + 45_000) == 1)
            #expect(try await stores.integer("SELECT COUNT(*) FROM token_rate_windows WHERE token_id = 7") == 1)
        }
    }

    @Test("40 concurrent requests against an RPM limit of 20: exactly 20 are admitted", arguments: StoreEngine.tested)
    func concurrentRateWindow(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let windows = stores.rateWindows
            let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        try await windows.admit(tokenID: 3, limit: 20, now: Self.start + Int64(index)) == .allow
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(admitted == 20)
            #expect(try await windows.requests(tokenID: 3, now: Self.start) == 40)
        }
    }

    @Test("reservations hold a quota until the collector counts the request's row", arguments: StoreEngine.tested)
    func reservations(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (token, _) = try await stores.tokens.create(
                name: "q", limits: ClientTokenLimits(tokenQuota: 100), audit: nil)
            let id = try #require(token.id)
            let reservations = stores.quotaReservations
            let now = Self.start
            #expect(
                try await reservations.reserve(tokenID: id, requestID: "a", tokens: 60, quota: 100, now: now) == .allow)
            #expect(
                try await reservations.reserve(tokenID: id, requestID: "b", tokens: 60, quota: 100, now: now) == .allow)
            #expect(
                try await reservations.reserve(tokenID: id, requestID: "c", tokens: 1, quota: 100, now: now)
                    == .quotaReserved(quota: 100))
            #expect(try await reservations.reserved(tokenID: id) == 120)
            let row = UsageRow(
                requestID: "a", timestamp: now, worker: 0, keyID: nil, tokenID: id, model: "m", method: "POST",
                path: "/v1/chat/completions", status: 200, latencyMs: 1, ttfbMs: 1, streamed: false, promptTokens: 20,
                completionTokens: 10, totalTokens: 30, error: nil)
            _ = try await stores.usage.commit([row], refused: [])
            #expect(try await reservations.reserved(tokenID: id) == 60)
            #expect(
                try await reservations.reserve(tokenID: id, requestID: "d", tokens: 5, quota: 100, now: now) == .allow)
            let later = now + TokenQuotaReservations.lifetimeMilliseconds + 1
            #expect(
                try await reservations.reserve(tokenID: id, requestID: "e", tokens: 5, quota: 100, now: later)
                    == .allow,
                "a dead worker's reservations stop counting after their lifetime")
            #expect(try await reservations.reserved(tokenID: id) == 5)
            try await reservations.release(requestID: "e")
            #expect(try await reservations.reserved(tokenID: id) == 0)
        }
    }

    @Test("parallel reservations of one token decide one after the other", arguments: StoreEngine.tested)
    func concurrentReservations(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (token, _) = try await stores.tokens.create(
                name: "q", limits: ClientTokenLimits(tokenQuota: 100), audit: nil)
            let id = try #require(token.id)
            let reservations = stores.quotaReservations
            let allowed = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        try await reservations.reserve(
                            tokenID: id, requestID: "r\(index)", tokens: 30, quota: 100, now: Self.start) == .allow
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            // 0, 30, 60 and 90 reserved are below 100; at 120 every later one waits.
            #expect(allowed == 4)
            #expect(try await reservations.reserved(tokenID: id) == 120)
        }
    }
}
