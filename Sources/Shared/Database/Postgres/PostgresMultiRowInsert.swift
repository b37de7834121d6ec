import PostgresNIO

/// One column a PostgreSQL multi-row statement fills from a `Record`: its name and how the value is bound.
public struct PostgresInsertColumn<Record>: Sendable {
    /// The column's name.
    public let name: String
    /// Appends `record`'s value for this column to a statement's bindings.
    let bind: @Sendable (Record, inout PostgresBindings) -> Void

    /// The column `name`, holding `value(record)` (NULL for nil).
    public init<Value: PostgresDynamicTypeEncodable>(_ name: String, _ value: @escaping @Sendable (Record) -> Value?) {
        self.name = name
        bind = { record, bindings in bindings.append(value(record)) }
    }
}

/// `INSERT INTO table (columns) VALUES (…), (…) tail` for many records at once, cut into as few statements as
/// PostgreSQL's limit of 65,535 parameters per statement allows (and at most `maximumRows` rows each).
///
/// The columns are one list, so a column added to the table is one entry here. No statement cache to feed:
/// the server parses each statement text anyway, so one statement per chunk of any size costs one round trip,
/// where SQLite's `MultiRowInsert` keeps to a few fixed sizes for its cache.
public struct PostgresMultiRowInsert<Record>: Sendable {
    /// `INSERT INTO table`.
    public let head: String
    /// The columns filled, in order.
    public let columns: [PostgresInsertColumn<Record>]
    /// What follows the `VALUES` list: `ON CONFLICT …`, `RETURNING …`, or nothing.
    public let tail: String
    /// Rows per statement at most.
    public let maximumRows: Int

    /// The statement `head (columns) VALUES … tail`, at most `maximumRows` rows per statement.
    public init(_ head: String, columns: [PostgresInsertColumn<Record>], tail: String = "", maximumRows: Int = 1000) {
        self.head = head
        self.columns = columns
        self.tail = tail
        self.maximumRows = max(1, min(maximumRows, Int(UInt16.max) / columns.count))
    }

    /// The statements inserting `records`, in their order: one per `maximumRows` records.
    public func queries(_ records: [Record]) -> [PostgresQuery] {
        stride(from: 0, to: records.count, by: maximumRows).map { start in
            query(records[start..<min(records.count, start + maximumRows)])
        }
    }

    /// One statement inserting every record of `records`.
    func query(_ records: ArraySlice<Record>) -> PostgresQuery {
        var sql = "\(head) (\(columns.lazy.map(\.name).joined(separator: ", "))) VALUES "
        var bindings = PostgresBindings(capacity: records.count * columns.count)
        for (index, record) in records.enumerated() {
            sql += index == 0 ? "(" : ",("
            for (offset, column) in columns.enumerated() {
                if offset > 0 { sql += "," }
                sql += "$\(index * columns.count + offset + 1)"
                column.bind(record, &bindings)
            }
            sql += ")"
        }
        if !tail.isEmpty { sql += " " + tail }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }
}
