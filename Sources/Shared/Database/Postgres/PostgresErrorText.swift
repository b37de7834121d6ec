import PostgresNIO

/// One readable line for an error met on PostgreSQL: postgres-nio's `PSQLError` describes itself only as "Generic
/// description to prevent accidental leakage of sensitive data", so the server's own message (which names no
/// password) and its SQLSTATE are shown instead.
public enum PostgresErrorText {
    /// `error` as an operator reads it.
    public static func line(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return "PostgreSQL: \(message)\(state)"
        }
        return "PostgreSQL: \(error.underlying.map { "\($0)" } ?? "\(error.code)")"
    }
}
