import Foundation
import Shared

/// `cursor-bench DATABASE SECONDS [BLOCK]`: advances the shared round-robin cursor as fast as it can for
/// SECONDS, leasing BLOCK positions per write (default 1), and prints one line
/// `writes=<n> positions=<n> seconds=<s> slowest_ms=<ms>` (the slowest single write). `make bench` runs
/// several of these at once to measure the cursor under contention between processes; it is a benchmark
/// tool, not part of the service.
@main
struct CursorBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3, let seconds = Double(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: cursor-bench DATABASE SECONDS [BLOCK]\n".utf8))
            exit(2)
        }
        let block = arguments.count > 3 ? Int(arguments[3]) ?? 1 : 1
        let database = try ProxyDatabase.open(at: arguments[1], migrate: false)
        let cursor = RotationCursor(database: database)
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int64(seconds * 1000))
        var writes = 0
        var slowest = Duration.zero
        let started = clock.now
        while clock.now < end {
            let before = clock.now
            _ = try await cursor.lease(block)
            slowest = max(slowest, clock.now - before)
            writes += 1
        }
        let elapsed = clock.now - started
        print(
            "writes=\(writes) positions=\(writes * block) seconds=\(elapsed.inSeconds) "
                + "slowest_ms=\(slowest.inMilliseconds)")
    }
}
