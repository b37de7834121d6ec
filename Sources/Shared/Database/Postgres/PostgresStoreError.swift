/// What a PostgreSQL store met that the schema rules out (a row it cannot read), or a server that stopped answering.
public enum PostgresStoreError: Error, Equatable, CustomStringConvertible {
    /// A call had no answer within its bound.
    case noAnswer(within: Duration)
    /// An `INSERT … RETURNING` returned nothing.
    case noRowReturned(table: String)
    /// A stored value is not one the record accepts.
    case unreadableValue(table: String, column: String)

    public var description: String {
        switch self {
        case .noAnswer(let bound): return "PostgreSQL gave no answer within \(bound)"
        case .noRowReturned(let table): return "inserting into \(table) returned no row"
        case .unreadableValue(let table, let column): return "\(table).\(column) holds a value this binary cannot read"
        }
    }
}
