import Foundation

/// Where the shared database is: `OPENAI_PROXY_DATABASE_URL`, default SQLite in the data directory.
public enum DatabaseLocation: Sendable, Equatable {
    /// The SQLite file `DATA_DIR/openai_proxy.db` (unset, or `sqlite:`).
    case sqlite
    /// A PostgreSQL database shared by every process of every host (`postgresql://…` or `postgres://…`).
    case postgresql(PostgresLocation)

    /// Parses a `database_url` value; `password` is used when the URL carries none (from
    /// `OPENAI_PROXY_DATABASE_PASSWORD_FILE` or `PGPASSWORD`). Throws one line saying what is wrong.
    public static func parse(_ text: String, password: String? = nil) throws(DatabaseURLError) -> DatabaseLocation {
        let text = text.trimmingWhitespace()
        let lowered = text.lowercased()
        if lowered == "sqlite:" || lowered == "sqlite://" {
            return .sqlite
        }
        if lowered.hasPrefix("sqlite:") {
            throw DatabaseURLError("the SQLite file is always DATA_DIR/openai_proxy.db: write sqlite: alone")
        }
        guard lowered.hasPrefix("postgresql://") || lowered.hasPrefix("postgres://") else {
            throw DatabaseURLError("expected sqlite:, postgresql://… or postgres://…")
        }
        return .postgresql(try PostgresLocation(parsing: text, password: password))
    }
}

/// A PostgreSQL server, role and database, as `postgresql://user:password@host:port/database?sslmode=…` names them.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    /// Host name or address (brackets of an IPv6 address removed).
    public var host: String
    /// TCP port, default 5432.
    public var port: Int
    /// The role to log in as.
    public var user: String
    /// Its password: from the URL, else the password file setting, else `PGPASSWORD`; nil for none.
    public var password: String?
    /// The database, default the user's name (as libpq does).
    public var database: String
    /// Whether and how TLS is used, as libpq's `sslmode`; default `prefer`.
    public var sslMode: PostgresSSLMode

    /// A location from its parts.
    public init(
        host: String, port: Int = 5432, user: String, password: String?, database: String,
        sslMode: PostgresSSLMode = .prefer
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
    }

    /// Parses a `postgresql://` or `postgres://` URL; `password` is used when the URL has none.
    public init(parsing text: String, password: String? = nil) throws(DatabaseURLError) {
        // URLComponents does not know the scheme; the authority and path parse the same under http.
        let schemeEnd = text.range(of: "://")!.upperBound
        guard let components = URLComponents(string: "http://" + text[schemeEnd...]) else {
            throw DatabaseURLError("not a URL (characters such as @ : / in the password must be %-encoded)")
        }
        guard var host = components.host, !host.isEmpty else {
            throw DatabaseURLError("a host is needed, such as postgresql://user@db.example:5432/openai_proxy")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let user = components.user, !user.isEmpty else {
            throw DatabaseURLError("a user is needed, such as postgresql://openai_proxy@\(host)/openai_proxy")
        }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw DatabaseURLError("the port must be 1 to 65535") }
        var path = components.path
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.contains("/") else { throw DatabaseURLError("the path must be one database name") }
        var sslMode = PostgresSSLMode.prefer
        for item in components.queryItems ?? [] {
            guard item.name == "sslmode" else {
                throw DatabaseURLError("unknown parameter \(item.name) (only sslmode is understood)")
            }
            guard let mode = item.value.flatMap(PostgresSSLMode.init(rawValue:)) else {
                let modes = PostgresSSLMode.allCases.map(\.rawValue).joined(separator: ", ")
                throw DatabaseURLError("sslmode must be one of \(modes)")
            }
            sslMode = mode
        }
        self.init(
            host: host, port: port, user: user, password: components.password ?? password,
            database: path.isEmpty ? user : path, sslMode: sslMode)
    }

    /// The URL without its password, for logs and errors.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgresql://\(user)@\(shownHost):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }
}

/// libpq's `sslmode` values.
public enum PostgresSSLMode: String, Sendable, CaseIterable {
    /// No TLS.
    case disable
    /// TLS when the server offers it, certificate not checked (libpq tries plain text first; here as prefer).
    case allow
    /// TLS when the server offers it, certificate not checked.
    case prefer
    /// TLS or fail, certificate not checked.
    case require
    /// TLS, certificate chain checked against the system's roots, host name not.
    case verifyCA = "verify-ca"
    /// TLS, certificate chain and host name checked.
    case verifyFull = "verify-full"
}

/// Why a `database_url` value was refused: one line, never containing the password.
public struct DatabaseURLError: Error, Equatable, CustomStringConvertible {
    /// What is wrong.
    public let reason: String

    /// An error saying `reason`.
    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}
