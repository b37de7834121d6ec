import NIOCore
import Shared

/// The usage rows one event-loop thread recorded in its current tick, and the channels to flush once they
/// are in the kernel's hands.
///
/// `@unchecked Sendable`: each instance is made, read and changed on one thread only (the sender keeps one
/// per thread in a `ThreadSpecificVariable`, and the task that sends it runs on the same event loop).
final class UsageTickBatch: @unchecked Sendable {
    private var lines = UsageLines(capacity: 4096)
    private var channels: [any Channel] = []
    private var scheduled = false

    /// Adds `row`, to be sent before `channel` is flushed; true when it is the tick's first row (the caller
    /// schedules the send).
    func add(_ row: UsageRow, flushing channel: any Channel) -> Bool {
        UsageWire.encode(row, into: &lines.bytes)
        lines.count += 1
        channels.append(channel)
        defer { scheduled = true }
        return !scheduled
    }

    /// The tick's rows and channels, leaving an empty batch (rows recorded from now on belong to the next tick).
    func take() -> (lines: UsageLines, channels: [any Channel]) {
        // The bytes stay with the delivery until acknowledged: a new buffer of the same size takes the next tick.
        let taken = (lines, channels)
        lines = UsageLines(capacity: taken.0.bytes.count)
        channels = []
        channels.reserveCapacity(taken.1.count)
        scheduled = false
        return taken
    }
}
