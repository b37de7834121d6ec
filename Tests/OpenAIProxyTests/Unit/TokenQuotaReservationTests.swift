import Foundation
import NIOCore
import Testing

@testable import ProxyWorker
@testable import Shared

/// The quota decision and the size a request reserves (the reservations themselves: the token limit store
/// suites, on both engines).
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
}
