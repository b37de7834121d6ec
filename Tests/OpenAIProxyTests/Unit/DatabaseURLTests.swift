import Foundation
import Testing

@testable import Shared

@Suite("Database URL")
struct DatabaseURLTests {
    private func load(_ environment: [String: String]) throws(ConfigurationError) -> ProxyConfiguration {
        try ConfigurationLoader(environment: environment, cores: 2).load()
    }

    @Test("unset, sqlite: and sqlite:// mean the SQLite file in the data directory")
    func sqlite() throws {
        #expect(try load([:]).database == .sqlite)
        #expect(try load(["OPENAI_PROXY_DATABASE_URL": "sqlite:"]).database == .sqlite)
        #expect(try load(["OPENAI_PROXY_DATABASE_URL": " SQLite:// "]).database == .sqlite)
    }

    @Test("a postgresql:// URL gives user, %-decoded password, host, port, database and sslmode")
    func fullURL() throws {
        let config = try load([
            "OPENAI_PROXY_DATABASE_URL": "postgresql://proxy:p%40ss%3Aword@db.example:6543/gateway?sslmode=verify-full"
        ])
        let expected = PostgresLocation(
            host: "db.example", port: 6543, user: "proxy", password: "p@ss:word", database: "gateway",
            sslMode: .verifyFull)
        #expect(config.database == .postgresql(expected))
    }

    @Test("postgres:// defaults: port 5432, database named as the user, sslmode prefer, no password; IPv6 hosts")
    func defaults() throws {
        let location = try PostgresLocation(parsing: "postgres://proxy@[::1]")
        #expect(location.host == "::1")
        #expect(location.port == 5432)
        #expect(location.database == "proxy")
        #expect(location.sslMode == .prefer)
        #expect(location.password == nil)
        #expect(location.description == "postgresql://proxy@[::1]:5432/proxy?sslmode=prefer")
    }

    @Test("the password: the URL's first, else the password file's first line, else PGPASSWORD")
    func passwordSources() throws {
        let directory = TemporaryDirectory()
        let file = directory.file("pg-password")
        try "from-file\nignored\n".write(toFile: file, atomically: true, encoding: .utf8)
        let url = "postgresql://proxy@127.0.0.1/gateway"
        func password(_ environment: [String: String]) throws -> String? {
            guard case .postgresql(let location) = try load(environment).database else { return "not postgresql" }
            return location.password
        }
        #expect(try password(["OPENAI_PROXY_DATABASE_URL": url]) == nil)
        #expect(try password(["OPENAI_PROXY_DATABASE_URL": url, "PGPASSWORD": "from-env"]) == "from-env")
        #expect(
            try password([
                "OPENAI_PROXY_DATABASE_URL": url, "PGPASSWORD": "from-env", "OPENAI_PROXY_DATABASE_PASSWORD_FILE": file,
            ]) == "from-file")
        #expect(
            try password([
                "OPENAI_PROXY_DATABASE_URL": "postgresql://proxy:in-url@127.0.0.1/gateway",
                "OPENAI_PROXY_DATABASE_PASSWORD_FILE": file,
            ]) == "in-url")
    }

    @Test(
        "a bad URL is refused with one line that says why and never shows the password",
        arguments: [
            ("mysql://u:secret-pw@h/db", "expected sqlite:, postgresql://… or postgres://…"),
            ("sqlite:/var/lib/x.db", "write sqlite: alone"),
            ("postgresql://u:secret-pw@/db", "a host is needed"),
            ("postgresql://:secret-pw@h/db", "a user is needed"),
            ("postgresql://u:secret-pw@h/db/more", "one database name"),
            ("postgresql://u:secret-pw@h/db?sslmode=sometimes", "sslmode must be one of disable, allow, prefer"),
            ("postgresql://u:secret-pw@h/db?connect_timeout=3", "unknown parameter connect_timeout"),
            ("postgresql://u:secret-pw@h:54x/db", "not a URL"),
            ("postgresql://u:secret-pw@h:70000/db", "the port must be 1 to 65535"),
        ])
    func refused(url: String, reason: String) throws {
        let error = #expect(throws: ConfigurationError.self) {
            try load(["OPENAI_PROXY_DATABASE_URL": url])
        }
        let line = error?.description ?? ""
        #expect(line.hasPrefix("invalid OPENAI_PROXY_DATABASE_URL (from environment): "), "\(line)")
        #expect(line.contains(reason), "\(line)")
        #expect(!line.contains("secret"), "\(line)")
    }

    @Test("a password file without a PostgreSQL URL, or one that cannot be read, is refused")
    func passwordFileErrors() throws {
        let directory = TemporaryDirectory()
        let empty = directory.file("empty")
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        #expect(
            throws: ConfigurationError.missingCompanion(
                setting: "OPENAI_PROXY_DATABASE_PASSWORD_FILE", needs: "OPENAI_PROXY_DATABASE_URL")
        ) {
            try load(["OPENAI_PROXY_DATABASE_PASSWORD_FILE": empty])
        }
        let url = "postgresql://proxy@127.0.0.1/gateway"
        #expect(throws: ConfigurationError.unreadablePasswordFile(path: empty)) {
            try load(["OPENAI_PROXY_DATABASE_URL": url, "OPENAI_PROXY_DATABASE_PASSWORD_FILE": empty])
        }
        let missing = directory.file("missing")
        #expect(throws: ConfigurationError.unreadablePasswordFile(path: missing)) {
            try load(["OPENAI_PROXY_DATABASE_URL": url, "OPENAI_PROXY_DATABASE_PASSWORD_FILE": missing])
        }
        #expect(throws: ConfigurationError.self) {
            try load(["OPENAI_PROXY_DATABASE_URL": "sqlite:", "OPENAI_PROXY_DATABASE_PASSWORD_FILE": empty])
        }
    }
}
