import GRDB
import GRDBSQLite

/// How a batch of rows is cut into multi-row INSERT statements: a few fixed sizes, so that each size's
/// statement is prepared once and then reused from the connection's statement cache.
enum MultiRowInsert {
    /// Rows per statement, largest first; a batch takes as many of each as fit, so at most 7 + 7 statements
    /// of the smaller sizes follow the 64-row ones. 64 × 21 parameters stay far below SQLite's limit.
    static let chunkSizes = [64, 8, 1]

    /// Calls `body` with consecutive index ranges covering `0..<count`, each one of `chunkSizes` long.
    static func chunks(of count: Int, _ body: (Range<Int>) throws -> Void) rethrows {
        var start = 0
        for size in chunkSizes {
            while count - start >= size {
                try body(start..<start + size)
                start += size
            }
        }
    }

    /// Inserts `count` rows with the statements of `sql` (from `sql(_:columns:)`, `width` columns a row), each
    /// taken from the connection's cache; `bind(index, bindings, base)` binds row `index` from parameter
    /// `base + 1` on. Returns how many rows SQLite stored (an `OR IGNORE` insert may store fewer).
    static func insert(
        count: Int, into db: Database, sql: [Int: String], width: Int, failure: String,
        bind: (Int, DirectBindings, Int32) -> Void
    ) throws -> Int {
        var stored = 0
        try chunks(of: count) { range in
            let bindings = DirectBindings(statement: try db.cachedStatement(sql: sql[range.count]!))
            for (offset, index) in range.enumerated() {
                bind(index, bindings, Int32(offset * width))
            }
            try bindings.step(failure: failure)
            stored += Int(sqlite3_changes(db.sqliteConnection))
        }
        return stored
    }

    /// The statement text for each of `chunkSizes`: `insert` (such as `INSERT INTO table`) with `columns`
    /// and a `VALUES` list of that many rows of anonymous parameters, numbered row after row.
    static func sql(_ insert: String, columns: [String]) -> [Int: String] {
        let row = "(" + Array(repeating: "?", count: columns.count).joined(separator: ",") + ")"
        let head = "\(insert) (\(columns.joined(separator: ", "))) VALUES "
        return Dictionary(
            uniqueKeysWithValues: chunkSizes.map {
                ($0, head + Array(repeating: row, count: $0).joined(separator: ","))
            })
    }
}
