import Foundation
import GRDB
import Logging
import Testing

@testable import ProxyWorker
@testable import Shared
@testable import StatsCollector

/// Requests refused before a token was known: counted per minute by the worker, carried as running
/// totals on the usage wire, stored by the collector as the largest total per minute, reason and source.
@Suite("Refused requests")
struct RefusedRequestsTests {
    private let minute: Int64 = 1_700_000_040_000

    @Test("the tally samples the first refusal per reason and minute, and drains running totals once")
    func tally() {
        var tally = RefusedTally(source: "w0-a")
        #expect(tally.count(.invalidToken, now: minute + 1) == .init(sample: true, becameDirty: true))
        #expect(tally.count(.invalidToken, now: minute + 2) == .init(sample: false, becameDirty: false))
        #expect(tally.count(.missingToken, now: minute + 3) == .init(sample: true, becameDirty: false))
        #expect(
            tally.drain(now: minute + 4) == [
                RefusedCount(source: "w0-a", minute: minute, reason: .invalidToken, count: 2),
                RefusedCount(source: "w0-a", minute: minute, reason: .missingToken, count: 1),
            ])
        #expect(!tally.isDirty)
        #expect(tally.drain(now: minute + 5).isEmpty)
        // Later in the same minute: the running total goes on, and no second sample is logged.
        #expect(tally.count(.invalidToken, now: minute + 6) == .init(sample: false, becameDirty: true))
        // The next minute starts over.
        #expect(tally.count(.invalidToken, now: minute + 60_000) == .init(sample: true, becameDirty: false))
        #expect(
            tally.drain(now: minute + 60_001) == [
                RefusedCount(source: "w0-a", minute: minute, reason: .invalidToken, count: 3),
                RefusedCount(source: "w0-a", minute: minute + 60_000, reason: .invalidToken, count: 1),
            ])
        // The finished minute is forgotten once sent: a new count there would start again (never happens
        // with a forward clock), the current one goes on.
        #expect(tally.count(.invalidToken, now: minute + 60_002).sample == false)
    }

    @Test("a graceful shutdown ends the gathering delay at once and sends what was counted", .timeLimit(.minutes(1)))
    func shutdownEndsDelay() async throws {
        let refused = RefusedRequests(
            source: "w0-t", usage: nil, logger: Logger(label: "test"), sendDelay: .seconds(3600))
        try await withRunningServices([refused]) {
            refused.refused(.invalidToken, client: nil, method: "GET", path: "/v1/models")
        }
        // An hour's delay inside a one-minute test: only the shutdown can have ended it; the count was taken.
        #expect(refused.take(now: WallClock.nowMs()).isEmpty)
    }

    @Test("a refused count round-trips on the wire beside usage rows; malformed ones are rejected")
    func wire() {
        let count = RefusedCount(source: "w1-xyz", minute: minute, reason: .unknownPath, count: 12_345)
        let line = UsageWire.encode(count)
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(UsageWire.decodeRecord(Array(line.dropLast())) == .refused(count))
        // A usage-row reader that predates counts drops the line rather than misreading it.
        #expect(UsageWire.decode(Array(line.dropLast())) == nil)
        for bad in [
            "r1\tw1\t1700000040000\tno_such_reason\t3", "r1\tw1\t1700000040000\tunknown_path\t-3",
            "r1\t\t1700000040000\tunknown_path\t3", "r1\tw1\tx\tunknown_path\t3", "r1\tw1\t1\tunknown_path",
            "r1\t" + String(repeating: "s", count: 65) + "\t1\tunknown_path\t3",
        ] {
            #expect(UsageWire.decodeRecord(Array(bad.utf8)) == nil, "\(bad)")
        }
        let row = UsageRow(
            requestID: "r", timestamp: 1, worker: 0, keyID: nil, tokenID: nil, model: nil, method: "GET",
            path: "/v1/x", status: 200, latencyMs: 1, ttfbMs: nil, streamed: false, promptTokens: nil,
            completionTokens: nil, totalTokens: nil, error: nil)
        #expect(UsageWire.decodeRecord(Array(UsageWire.encode(row).dropLast())) == .usage(row))
    }

    @Test("the collector keeps the largest total per minute, reason and source: resent or stale counts add nothing")
    func collectorCommit() async throws {
        let test = try TestDatabase()
        func commit(_ counts: [RefusedCount]) async throws -> [RefusalReason: Int64] {
            try await test.database.pool.write { db in try UsageBatchWriter.commit(counts, db) }
        }
        let a = RefusedCount(source: "w0-a", minute: minute, reason: .invalidToken, count: 5)
        #expect(try await commit([a]) == [.invalidToken: 5])
        // The same count again (a resend after a reconnect), and an older, smaller one overtaken by it.
        var stale = a
        stale.count = 3
        #expect(try await commit([a, stale]) == [:])
        var later = a
        later.count = 9
        let other = RefusedCount(source: "w1-b", minute: minute, reason: .invalidToken, count: 2)
        #expect(try await commit([later, other]) == [.invalidToken: 6])
        let total = try await test.database.pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT SUM(requests) FROM refused_requests")
        }
        #expect(total == 11)
    }

    @Test("a batch of refused counts and rows is committed through the writer and metrics count the growth")
    func writerAndMetrics() async throws {
        let test = try TestDatabase()
        let metrics = UsageMetrics()
        let writer = UsageBatchWriter(database: test.database, metrics: metrics, logger: .init(label: "test"))
        let count = RefusedCount(source: "w0-a", minute: minute, reason: .missingToken, count: 4)
        writer.enqueue(UsageWire.decodeRecord(Array(UsageWire.encode(count).dropLast())))
        writer.enqueue(UsageWire.decodeRecord(Array(UsageWire.encode(count).dropLast())))
        await writer.flush()
        #expect(writer.pending == 0)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"openai_proxy_refused_requests_total{reason="missing_token"} 4"#), "\(text)")
    }
}
