import Shared

/// The lines received and not yet committed, in their order, kept as the arrays the connections handed over.
///
/// Each line is copied once on its way to SQLite: into its batch's rows. Queueing line by line, copying a
/// batch out and then picking its rows, counts and objects apart copied every line (its row's strings
/// retained and released) three more times, about 6 % of the collector's time at load.
struct UsageBatchQueue {
    private var chunks: [[UsageBatchWriter.Received]] = []
    /// Lines at the front of `chunks[0]` that are committed already.
    private var offset = 0

    /// Lines queued and not committed.
    private(set) var count = 0

    /// Adds `lines` after those queued.
    mutating func append(_ lines: [UsageBatchWriter.Received]) {
        guard !lines.isEmpty else { return }
        chunks.append(lines)
        count += lines.count
    }

    /// The first `limit` lines at most, taken apart; they stay queued until `remove(_:)`.
    func batch(upTo limit: Int) -> UsageBatch {
        var batch = UsageBatch()
        var start = offset
        for chunk in chunks {
            let end = min(chunk.count, start + limit - batch.lines)
            for index in start..<end { batch.add(chunk[index]) }
            start = 0
            if batch.lines == limit { break }
        }
        return batch
    }

    /// Drops the first `lines` lines: they are committed.
    mutating func remove(_ lines: Int) {
        var left = min(lines, count)
        count -= left
        var emptied = 0
        while left > 0 {
            let rest = chunks[emptied].count - offset
            if left < rest {
                offset += left
                break
            }
            left -= rest
            offset = 0
            emptied += 1
        }
        chunks.removeFirst(emptied)
    }
}

/// One transaction's lines: what they carried, and per connection the highest line number among them.
struct UsageBatch: Sendable {
    /// How many lines, malformed ones included.
    var lines = 0
    /// The usage rows, in order.
    var rows: [UsageRow] = []
    /// The counts of refused requests, in order.
    var counts: [RefusedCount] = []
    /// The objects created or deleted, in order.
    var objects: [ObjectChange] = []
    /// Per connection, its highest line here: lines of one connection arrive and commit in order, so it
    /// acknowledges every line before it too.
    var acknowledgements: [ObjectIdentifier: (source: UsageSource, line: UInt64)] = [:]

    /// Adds the line `received`.
    mutating func add(_ received: UsageBatchWriter.Received) {
        lines += 1
        if let row = received.row { rows.append(row) }
        if let count = received.refused { counts.append(count) }
        if let object = received.object { objects.append(object) }
        guard let source = received.source else { return }
        let id = ObjectIdentifier(source)
        if received.line > acknowledgements[id]?.line ?? 0 { acknowledgements[id] = (source, received.line) }
    }
}
