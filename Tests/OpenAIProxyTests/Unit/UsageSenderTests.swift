import Foundation
import GRDB
import Logging
import Testing

@testable import ProxyWorker
@testable import Shared
@testable import StatsCollector

/// A worker's usage sender against a collector in this process: acknowledgements, the spool, replays.
@Suite("Usage sender", .timeLimit(.minutes(1)))
struct UsageSenderTests {
    private func row(_ id: String, model: String = "m") -> UsageRow {
        UsageRow(
            requestID: id, timestamp: 1_700_000_000_000, worker: 0, keyID: nil, tokenID: nil, model: model,
            method: "POST", path: "/v1/chat/completions", status: 200, latencyMs: 1, ttfbMs: 1, streamed: false,
            promptTokens: 2, completionTokens: 3, totalTokens: 5, error: nil)
    }

    private func logCount(_ test: TestDatabase) async throws -> Int {
        try await test.database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log") ?? 0 }
    }

    private func spoolFiles(_ test: TestDatabase) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: test.directory.file("spool"))) ?? [])
            .filter { $0.hasSuffix(".spool") }
    }

    private func sender(_ test: TestDatabase, capacity: Int = 1 << 20, drops: UsageDropBoard? = nil) -> UsageSender {
        UsageSender(
            socketPath: test.directory.file("stats.sock"), spoolCapacity: capacity, drops: drops,
            logger: Logger(label: "test"))
    }

    @Test("rows are committed once and forgotten once acknowledged; rows sent again count once")
    func acknowledged() async throws {
        let test = try TestDatabase()
        let collector = try await LocalCollector.start(
            database: test.database, socketPath: test.directory.file("stats.sock"))
        let running = RunningSender(sender(test))
        let rows = (0..<300).map { row("r\($0)") }
        // Once connected, rows go straight to the socket.
        // The probe, recorded until the connection is up, is one request: its row is stored once.
        #expect(
            await eventually {
                running.sender.record(row("probe"))
                return (try? await logCount(test)) ?? 0 > 0
            })
        let probes = 1
        for row in rows { running.sender.record(row) }
        #expect(await eventually { running.sender.pending == 0 })
        #expect(try await logCount(test) == 300 + probes)
        #expect(spoolFiles(test).isEmpty)
        for row in rows { running.sender.record(row) }
        #expect(await eventually { running.sender.pending == 0 })
        #expect(try await logCount(test) == 300 + probes)
        try await test.database.pool.read { db throws in
            #expect(try Int.fetchOne(db, sql: "SELECT SUM(requests) FROM usage_hourly") == 300 + probes)
        }
        await running.stop()
        await collector.stop()
    }

    @Test("with the collector away rows wait in the spool, and are replayed when it is back")
    func spoolAndReplay() async throws {
        let test = try TestDatabase()
        let running = RunningSender(sender(test))
        for index in 0..<50 { running.sender.record(row("s\(index)")) }
        #expect(running.sender.pending == 50)
        #expect(!spoolFiles(test).isEmpty, "rows are on disk as soon as record returns")
        let collector = try await LocalCollector.start(
            database: test.database, socketPath: test.directory.file("stats.sock"))
        #expect(await eventually { (try? await logCount(test)) == 50 && running.sender.pending == 0 })
        #expect(await eventually { spoolFiles(test).isEmpty })
        await running.stop()
        await collector.stop()
    }

    @Test("rows a collector received but never acknowledged are sent again after it went away")
    func resendAfterReconnect() async throws {
        let test = try TestDatabase()
        let socket = test.directory.file("stats.sock")
        let silent = try await SilentCollector.start(socketPath: socket)
        let running = RunningSender(sender(test))
        #expect(
            await eventually {
                running.sender.record(row("w\(UUID())"))
                return silent.lines > 0
            })
        for index in 0..<40 { running.sender.record(row("u\(index)")) }
        #expect(await eventually { silent.lines >= 41 })
        let recorded = running.sender.pending
        #expect(recorded >= 41, "nothing was acknowledged, so every row is still held")
        await silent.kill()
        let collector = try await LocalCollector.start(database: test.database, socketPath: socket)
        #expect(await eventually { running.sender.pending == 0 })
        #expect(try await logCount(test) == recorded)
        await running.stop()
        await collector.stop()
    }

    @Test("a spool left by a worker that is gone is adopted, replayed and deleted")
    func orphanAdopted() async throws {
        let test = try TestDatabase()
        var spool = UsageSpool(directory: test.directory.file("spool"), owner: "dead-worker")
        var segment = try spool.create()
        for index in 0..<25 { try UsageSpool.append(UsageWire.encode(row("o\(index)")), to: &segment) }
        // A torn last line, as a kill in the middle of a write leaves it: no row.
        try UsageSpool.append(Array("u2\ttorn".utf8), to: &segment)
        UsageSpool.release(segment)
        let collector = try await LocalCollector.start(
            database: test.database, socketPath: test.directory.file("stats.sock"))
        let running = RunningSender(sender(test))
        #expect(await eventually { (try? await logCount(test)) == 25 })
        #expect(await eventually { spoolFiles(test).isEmpty })
        await running.stop()
        await collector.stop()
    }

    @Test("a spool an older binary wrote (u2 rows) replays beside u3 rows: its token details stay absent")
    func olderSpoolReplayed() async throws {
        let test = try TestDatabase()
        var spool = UsageSpool(directory: test.directory.file("spool"), owner: "old-worker")
        var segment = try spool.create()
        // Exactly as the u2 encoder wrote a row: 21 fields, no token details.
        for index in 0..<3 {
            let old =
                "u2\told\(index)\t1700000000000\t0\t\t\tgpt-4o\tPOST\t/v1/chat/completions\t200\t1.5\t0.5\t0"
                + "\t7\t3\t10\t\t0\t0\t\t\n"
            try UsageSpool.append(Array(old.utf8), to: &segment)
        }
        var current = row("new0")
        current.cachedTokens = 64
        current.reasoningTokens = 0
        try UsageSpool.append(UsageWire.encode(current), to: &segment)
        UsageSpool.release(segment)
        let collector = try await LocalCollector.start(
            database: test.database, socketPath: test.directory.file("stats.sock"))
        let running = RunningSender(sender(test))
        #expect(await eventually { (try? await logCount(test)) == 4 })
        try await test.database.pool.read { db in
            let old = try Row.fetchAll(
                db, sql: "SELECT * FROM usage_log WHERE request_id LIKE 'old%' ORDER BY request_id")
            #expect(old.map { $0["prompt_tokens"] as Int? } == [7, 7, 7])
            for column in ["cached_tokens", "reasoning_tokens", "audio_input_tokens", "audio_output_tokens"] {
                #expect(old.allSatisfy { $0[column] as Int? == nil }, "\(column)")
            }
            let new = try #require(try Row.fetchOne(db, sql: "SELECT * FROM usage_log WHERE request_id = 'new0'"))
            #expect(new["cached_tokens"] as Int? == 64)
            #expect(new["reasoning_tokens"] as Int? == 0)
            #expect(new["audio_input_tokens"] as Int? == nil)
        }
        await running.stop()
        await collector.stop()
    }

    @Test("a segment held by a live worker is not adopted")
    func liveSegmentKept() throws {
        let test = try TestDatabase()
        let directory = test.directory.file("spool")
        var spool = UsageSpool(directory: directory, owner: "live")
        var segment = try spool.create()
        try UsageSpool.append(UsageWire.encode(row("x")), to: &segment)
        #expect(UsageSpool(directory: directory, owner: "other").adoptOrphans(excluding: [], budget: 1 << 20).isEmpty)
        UsageSpool.release(segment)
        let adopted = UsageSpool(directory: directory, owner: "other").adoptOrphans(excluding: [], budget: 1 << 20)
        #expect(adopted.map(\.size) == [segment.size])
        adopted.forEach(UsageSpool.remove)
    }

    @Test("at the spool's cap rows are dropped and counted on the board; the rows before are kept")
    func capDrops() throws {
        let test = try TestDatabase()
        let board = try UsageDropBoard(path: test.directory.file("usage-drops"))
        let line = UsageWire.encode(row("c0")).count
        let sender = sender(test, capacity: line * 2, drops: board)
        for index in 0..<5 { sender.record(row("c\(index)")) }
        #expect(sender.pending == 2)
        #expect(sender.dropped == 3)
        #expect(board.total == 3)
        #expect(sender.queued.map(\.requestID) == ["c0", "c1"])
    }
}
