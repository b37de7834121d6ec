import NIOEmbedded
import Testing

@testable import Shared
@testable import StatsCollector

/// The collector's queue of received lines: batches cut across the arrays connections handed over, each line
/// taken once, acknowledgements per connection.
@Suite("Usage batch queue")
struct UsageBatchQueueTests {
    private static func row(_ id: String) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: 1_700_000_000_000, worker: 0, keyID: nil, tokenID: nil, model: "m",
            method: "POST", path: "/v1/chat/completions", status: 200, latencyMs: 1, ttfbMs: nil, streamed: false,
            promptTokens: nil, completionTokens: nil, totalTokens: nil, error: nil)
    }

    /// Lines `first...last` of `source`, each carrying the row `"<prefix><line>"`.
    private static func lines(
        _ first: UInt64, _ last: UInt64, from source: UsageSource?, prefix: String
    ) -> [UsageBatchWriter.Received] {
        (first...last).map { UsageBatchWriter.Received(row: row("\(prefix)\($0)"), source: source, line: $0) }
    }

    @Test("batches take lines in order across handed-over arrays, up to the limit, until removed")
    func batchesAcrossChunks() {
        var queue = UsageBatchQueue()
        queue.append(Self.lines(1, 3, from: nil, prefix: "a"))
        queue.append([])
        queue.append(Self.lines(4, 8, from: nil, prefix: "a"))
        #expect(queue.count == 8)
        let first = queue.batch(upTo: 5)
        #expect(first.lines == 5)
        #expect(first.rows.map(\.requestID) == ["a1", "a2", "a3", "a4", "a5"])
        // Not removed yet (the commit may fail): the same lines again.
        #expect(queue.batch(upTo: 5).rows.map(\.requestID) == first.rows.map(\.requestID))
        queue.remove(first.lines)
        #expect(queue.count == 3)
        let second = queue.batch(upTo: 5)
        #expect(second.rows.map(\.requestID) == ["a6", "a7", "a8"])
        queue.remove(second.lines)
        #expect(queue.count == 0)
        #expect(queue.batch(upTo: 5).lines == 0)
        // A batch ending exactly at an array's end, then one starting in the next.
        queue.append(Self.lines(9, 10, from: nil, prefix: "a"))
        queue.append(Self.lines(11, 12, from: nil, prefix: "a"))
        let third = queue.batch(upTo: 2)
        #expect(third.rows.map(\.requestID) == ["a9", "a10"])
        queue.remove(third.lines)
        #expect(queue.batch(upTo: 10).rows.map(\.requestID) == ["a11", "a12"])
    }

    @Test("a batch sorts what lines carried, counts malformed lines, and acknowledges each connection's highest")
    func contentsAndAcknowledgements() {
        let one = UsageSource(channel: EmbeddedChannel())
        let two = UsageSource(channel: EmbeddedChannel())
        var queue = UsageBatchQueue()
        queue.append(Self.lines(1, 2, from: one, prefix: "x"))
        let refused = RefusedCount(source: "w0", minute: 1, reason: .missingToken, count: 3)
        queue.append([
            UsageBatchWriter.Received(.refused(refused), source: two, line: 7),
            UsageBatchWriter.Received(nil, source: two, line: 8),
            UsageBatchWriter.Received(.object(.deleted(id: "file-1")), source: one, line: 3),
        ])
        let batch = queue.batch(upTo: 100)
        #expect(batch.lines == 5)
        #expect(batch.rows.map(\.requestID) == ["x1", "x2"])
        #expect(batch.counts == [refused])
        #expect(batch.objects == [.deleted(id: "file-1")])
        #expect(batch.acknowledgements[ObjectIdentifier(one)]?.line == 3)
        #expect(batch.acknowledgements[ObjectIdentifier(two)]?.line == 8)
        #expect(batch.acknowledgements.count == 2)
    }
}
