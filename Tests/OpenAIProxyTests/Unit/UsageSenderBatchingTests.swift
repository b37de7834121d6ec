import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import ProxyWorker
@testable import Shared

/// The rows of one event-loop tick leave in one write, before the answers they belong to are flushed.
@Suite("Usage sender batching", .timeLimit(.minutes(1)))
struct UsageSenderBatchingTests {
    private func row(_ id: String) -> UsageRow {
        UsageRow(
            requestID: id, timestamp: 1_700_000_000_000, worker: 0, keyID: 1, tokenID: 2, model: "gpt-test",
            method: "POST", path: "/v1/chat/completions", status: 200, latencyMs: 1.25, ttfbMs: 0.5, streamed: false,
            promptTokens: 2, completionTokens: 3, totalTokens: 5, error: nil)
    }

    private func sender(_ directory: TemporaryDirectory) -> UsageSender {
        UsageSender(socketPath: directory.file("stats.sock"), logger: Logger(label: "test"))
    }

    /// Channels on one embedded loop, each with an answer's end written and not flushed.
    private func answeringChannels(_ count: Int, loop: EmbeddedEventLoop) throws -> [EmbeddedChannel] {
        let channels = (0..<count).map { _ in EmbeddedChannel(loop: loop) }
        for channel in channels {
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            channel.write(ByteBuffer(string: "end"), promise: nil)
        }
        return channels
    }

    /// What each channel flushed so far.
    private func flushed(_ channels: [EmbeddedChannel]) throws -> [String?] {
        try channels.map { try $0.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } }
    }

    /// Records one row per channel, as the handlers of one tick do (one thread, no suspension in between).
    private func recordTick(_ sender: UsageSender, _ channels: [EmbeddedChannel], prefix: String) {
        for (index, channel) in channels.enumerated() { sender.record(row("\(prefix)\(index)"), flushing: channel) }
    }

    @Test("rows recorded in one tick leave in one send, and their channels are flushed only after it")
    func oneSendPerTick() async throws {
        let directory = TemporaryDirectory()
        let silent = try await SilentCollector.start(socketPath: directory.file("stats.sock"))
        let running = RunningSender(sender(directory))
        let sender = running.sender
        #expect(
            await eventually {
                sender.record(row("probe-\(UUID())"))
                return sender.sendsDirectly
            })
        // Nothing is acknowledged by this collector: every row recorded so far is pending, and reaches it.
        #expect(await eventually { silent.lines == sender.pending })
        let before = (sends: sender.directSends, lines: silent.lines, pending: sender.pending)
        let loop = EmbeddedEventLoop()
        let channels = try answeringChannels(3, loop: loop)
        recordTick(sender, channels, prefix: "t")
        // The tick is not over: nothing sent, no answer's end out.
        #expect(sender.directSends == before.sends)
        #expect(sender.pending == before.pending)
        #expect(try flushed(channels) == [nil, nil, nil])
        loop.run()
        #expect(sender.directSends == before.sends + 1, "three rows, one send")
        #expect(sender.pending == before.pending + 3)
        #expect(try flushed(channels) == ["end", "end", "end"])
        #expect(await eventually { silent.lines == before.lines + 3 })
        // The next tick is a batch of its own.
        recordTick(sender, try answeringChannels(2, loop: loop), prefix: "u")
        loop.run()
        #expect(sender.directSends == before.sends + 2)
        await running.stop()
        await silent.kill()
    }

    @Test("with the collector away a tick's rows go to the spool in one write before the channels are flushed")
    func spoolWhileAway() throws {
        let directory = TemporaryDirectory()
        let sender = sender(directory)
        let loop = EmbeddedEventLoop()
        let channels = try answeringChannels(4, loop: loop)
        recordTick(sender, channels, prefix: "s")
        #expect(sender.spoolAppends == 0)
        #expect(try flushed(channels) == [nil, nil, nil, nil])
        loop.run()
        #expect(sender.spoolAppends == 1, "four rows, one write")
        #expect(sender.queued.map(\.requestID) == ["s0", "s1", "s2", "s3"])
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.file("spool"))
        #expect(files.filter { $0.hasSuffix(".spool") }.count == 1)
        #expect(try flushed(channels) == ["end", "end", "end", "end"])
    }

    @Test("lines handed over while another party writes wait in the outbox; the holder writes them and lets go")
    func outboxWhileClaimed() throws {
        let directory = TemporaryDirectory()
        var delivery = UsageDelivery(
            spool: UsageSpool(directory: directory.file("spool"), owner: "t"), spoolCapacity: 1 << 20)
        let channel = EmbeddedChannel()
        let claimed = delivery.claim()
        #expect(claimed)
        let waiting = UsageLines(line: UsageWire.encode(row("o1")))
        let queuedFirst = !delivery.claim(orQueue: waiting, flushing: [channel])
        let queuedSecond = !delivery.claim(orQueue: UsageLines(line: UsageWire.encode(row("o2"))), flushing: [])
        #expect(queuedFirst && queuedSecond)
        #expect(!delivery.isSettled)
        let taken = delivery.nextOrRelease()
        let next = try #require(taken)
        #expect(next.lines.count == 2)
        #expect(next.channels.count == 1)
        #expect(delivery.claimed, "the holder keeps the claim while it writes what waited")
        let after = delivery.nextOrRelease()
        #expect(after == nil)
        #expect(!delivery.claimed)
        let again = delivery.claim(orQueue: waiting, flushing: [])
        #expect(again, "the claim is free again")
    }

    @Test("a send that takes part of a batch: whole lines are in flight, the begun line is owed, the rest spools")
    func partialSend() {
        let directory = TemporaryDirectory()
        var delivery = UsageDelivery(
            spool: UsageSpool(directory: directory.file("spool"), owner: "t"), spoolCapacity: 1 << 20)
        delivery.connected(-1)
        var lines = UsageLines()
        for id in ["p0", "p1", "p2"] {
            UsageWire.encode(row(id), into: &lines.bytes)
            lines.count += 1
        }
        let first = UsageWire.encode(row("p0")).count
        let rest = delivery.sent(lines, written: first + 5, error: 0)
        #expect(rest == first, "p1 and p2 go to the spool")
        #expect(delivery.inFlightCount == 1)
        #expect(delivery.route() == .spool)
        #expect(lines.suffix(from: first).count == 2)
        // Nothing taken at all: everything spools, and a failure other than a full socket breaks the connection.
        let failed = delivery.sent(lines, written: -1, error: EPIPE)
        #expect(failed == 0)
        #expect(delivery.broken)
    }
}
