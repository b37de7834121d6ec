import Foundation
import GRDB
import NIOCore
import Testing

@testable import ProxyWorker
@testable import Shared
@testable import StatsCollector

/// Reservations of in-flight requests against a client token's quota.
@Suite("Token quota reservations")
struct TokenQuotaReservationTests {
    @Test("the quota decision counts what is used and what requests in flight reserved")
    func policy() {
        #expect(ClientTokenPolicy.quota(used: 0, reserved: 0, quota: 100) == .allow)
        #expect(ClientTokenPolicy.quota(used: 60, reserved: 39, quota: 100) == .allow)
        #expect(ClientTokenPolicy.quota(used: 60, reserved: 40, quota: 100) == .quotaReserved(quota: 100))
        #expect(ClientTokenPolicy.quota(used: 100, reserved: 0, quota: 100) == .quotaExceeded(quota: 100))
        let reserved = ClientTokenDecision.quotaReserved(quota: 100)
        #expect(reserved.status == 429)
        #expect(reserved.code == "token_quota_reserved")
        #expect(reserved.retryAfterSeconds == 1)
        #expect(ClientTokenDecision.quotaExceeded(quota: 100).retryAfterSeconds == nil)
    }

    @Test("the estimate is the prompt at four bytes a token plus the request's completion limit or 1,024")
    func estimate() {
        func limit(_ json: String) -> Int64? { QuotaEstimate.completionLimit(in: ByteBuffer(string: json)) }
        #expect(limit(#"{"model":"m","max_tokens":50}"#) == 50)
        #expect(limit(#"{"max_completion_tokens":70,"max_tokens":50}"#) == 70)
        #expect(limit(#"{"input":"x","max_output_tokens":30}"#) == 30)
        #expect(limit(#"{"metadata":{"max_tokens":50}}"#) == nil)
        #expect(limit(#"{"max_tokens":"50"}"#) == nil)
        #expect(limit("") == nil)
        #expect(QuotaEstimate.tokens(requestBytes: 400, completionLimit: 50) == 150)
        #expect(QuotaEstimate.tokens(requestBytes: 401, completionLimit: nil) == 101 + 1024)
        #expect(QuotaEstimate.tokens(requestBytes: 0, completionLimit: -5) == 0)
        #expect(QuotaEstimate.tokens(requestBytes: 0, completionLimit: .max) == 1_000_000)
    }

    @Test("reservations hold the quota until the collector counts the request's row, in one transaction")
    func reserveAndRelease() async throws {
        let test = try TestDatabase()
        let (token, _) = try await test.tokens.create(name: "q", limits: ClientTokenLimits(tokenQuota: 100))
        let id = try #require(token.id)
        let reservations = TokenQuotaReservations(database: test.database)
        let now: Int64 = 1_700_000_000_000
        #expect(try await reservations.reserve(tokenID: id, requestID: "a", tokens: 60, quota: 100, now: now) == .allow)
        #expect(try await reservations.reserve(tokenID: id, requestID: "b", tokens: 60, quota: 100, now: now) == .allow)
        // 120 reserved: the third waits for one of them.
        #expect(
            try await reservations.reserve(tokenID: id, requestID: "c", tokens: 1, quota: 100, now: now)
                == .quotaReserved(quota: 100))
        #expect(try await reservations.reserved(tokenID: id) == 120)
        // The collector counts request a (30 tokens used) and drops its reservation in the same transaction.
        let row = UsageRow(
            requestID: "a", timestamp: now, worker: 0, keyID: nil, tokenID: id, model: "m", method: "POST",
            path: "/v1/chat/completions", status: 200, latencyMs: 1, ttfbMs: 1, streamed: false, promptTokens: 20,
            completionTokens: 10, totalTokens: 30, error: nil)
        let writer = UsageBatchWriter(database: test.database, logger: .init(label: "test"))
        writer.enqueue(row)
        await writer.flush()
        #expect(try await reservations.reserved(tokenID: id) == 60)
        // 30 used + 60 reserved < 100: one more may start.
        #expect(try await reservations.reserve(tokenID: id, requestID: "d", tokens: 5, quota: 100, now: now) == .allow)
        // A reservation left by a worker that died stops counting after its lifetime.
        let later = now + TokenQuotaReservations.lifetimeMilliseconds + 1
        #expect(
            try await reservations.reserve(tokenID: id, requestID: "e", tokens: 5, quota: 100, now: later) == .allow)
        #expect(try await reservations.reserved(tokenID: id) == 5)
        try await reservations.release(requestID: "e")
        #expect(try await reservations.reserved(tokenID: id) == 0)
    }
}
