import Foundation
import GRDB
import Testing

@testable import Shared

extension RealService {
    /// The management commands, run as a user would, before and without `serve`.
    @Suite("Command line")
    struct CommandLineTests {
        @Test("keys import counts added, duplicate and rejected lines, from a file or stdin")
        func importKeys() throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9/v1")
            let file = service.directory.file("keys.txt")
            try "sk-import-0000000001\nsk-import-0000000002\nsk-import-0000000001\n\n# note\nbad key\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            let first = try service.cli(["keys", "import", file])
            #expect(first.status == 0)
            #expect(first.stdout == "imported: 2 added, 1 duplicate, 1 rejected (lines 6)\n")
            let again = try service.cli(["keys", "import", "-"], stdin: "sk-import-0000000002\nsk-import-0000000003\n")
            #expect(again.stdout == "imported: 1 added, 1 duplicate, 0 rejected\n")
            let list = try service.cli(["keys", "list"])
            #expect(list.stdout.split(separator: "\n").count == 4)
            #expect(!list.stdout.contains("import-000"))
            let missing = try service.cli(["keys", "import", service.directory.file("nope.txt")])
            #expect(missing.status == 1 && missing.stderr.hasPrefix("openai-proxy: cannot read"))
        }

        @Test("keys add rejects duplicates and bad input with one line")
        func addKeys() throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9/v1")
            #expect(try service.cli(["keys", "add", "--name", "a", "--value", "sk-add-000000000001"]).status == 0)
            let duplicate = try service.cli(["keys", "add", "--name", "b", "--value", "sk-add-000000000001"])
            #expect(duplicate.status == 1 && duplicate.stderr == "openai-proxy: this key is already stored as key 1\n")
            let badStatus = try service.cli([
                "keys", "add", "--name", "c", "--value", "sk-add-000000000002", "--status", "on",
            ])
            #expect(badStatus.status == 2 && badStatus.stderr.contains("--status must be active or disabled"))
            let badValue = try service.cli(["keys", "add", "--name", "d", "--value", "x"])
            #expect(badValue.status == 1 && badValue.stderr == "openai-proxy: key_value must be 8 to 512 characters\n")
            let disabled = try service.cli([
                "keys", "add", "--name", "e", "--value", "sk-add-000000000003", "--status", "disabled",
            ])
            #expect(disabled.status == 0 && disabled.stdout.contains("disabled"))
        }

        @Test("tokens create prints the token alone on the last line; it is stored only as a hash")
        func tokens() throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9/v1")
            let created = try service.cli(["tokens", "create", "--name", "ci"])
            #expect(created.status == 0)
            let token = try #require(created.stdout.split(separator: "\n").last.map(String.init))
            #expect(token.hasPrefix("sk-proxy-") && token.count > 40)
            let list = try service.cli(["tokens", "list"])
            #expect(list.stdout.contains("ci") && !list.stdout.contains(token))
            let stored = try DatabaseQueue(path: service.databasePath).read { db in
                try String.fetchAll(db, sql: "SELECT token_hash || token_hint || name FROM client_tokens")
            }
            #expect(stored.count == 1 && !stored[0].contains(token.dropFirst(9).prefix(8)))
            #expect(try service.cli(["tokens", "revoke", "1"]).stdout == "revoked token 1\n")
            #expect(try service.cli(["tokens", "revoke", "1"]).stdout == "token 1 was already revoked\n")
            let missing = try service.cli(["tokens", "revoke", "9"])
            #expect(missing.status == 1 && missing.stderr == "openai-proxy: no token with id 9\n")
            let notNumber = try service.cli(["tokens", "revoke", "abc"])
            // A command line that does not parse: one line naming the problem, exit 64 (EX_USAGE).
            #expect(notNumber.status == 64)
            #expect(notNumber.stderr == "openai-proxy: The value 'abc' is invalid for '<id>' (see --help)\n")
            let unknown = try service.cli(["keys", "frobnicate"])
            #expect(unknown.status == 64 && unknown.stderr.split(separator: "\n").count == 1)
        }

        @Test("secrets are generated once with mode 0600 and keys never stored in the clear")
        func secretsAtRest() throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9/v1")
            #expect(
                try service.cli(["keys", "add", "--name", "a", "--value", "sk-rest-ABCDEFGHIJKL-0001"]).status == 0)
            let secret = service.directory.file("data") + "/secret.key"
            let attributes = try FileManager.default.attributesOfItem(atPath: secret)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            // The main file must exist; the WAL may have been checkpointed away when the CLI closed.
            let directory = service.directory.file("data")
            #expect(FileManager.default.fileExists(atPath: directory + "/openai_proxy.db"))
            for file in ["openai_proxy.db", "openai_proxy.db-wal"] {
                guard let data = FileManager.default.contents(atPath: directory + "/" + file) else { continue }
                #expect(data.range(of: Data("ABCDEFGH".utf8)) == nil, "\(file) holds the key in plaintext")
            }
            // The sealed value is there, in the database, and is not the plaintext.
            let database = try DatabaseQueue(path: directory + "/openai_proxy.db")
            let stored = try database.read { db in try String.fetchOne(db, sql: "SELECT key_value FROM keys") }
            #expect(stored != nil && stored?.contains("ABCDEFGH") == false)
        }

        @Test("--help lists every setting and the commands")
        func help() throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9/v1")
            let help = try service.cli(["--help"])
            for name in [
                "OPENAI_API_BASE_URL", "KEY_ROTATION_STRATEGY", "SECRET_KEY", "OPENAI_PROXY_DATA_DIR",
                "OPENAI_PROXY_LISTEN",
                "OPENAI_PROXY_ADMIN_LISTEN", "OPENAI_PROXY_WORKERS", "OPENAI_PROXY_ADMIN_TOKEN",
                "OPENAI_PROXY_DRAIN_TIMEOUT",
                "OPENAI_PROXY_MAX_BODY_BYTES", "LOG_LEVEL", "LOG_FORMAT", "OPENAI_PROXY_CONFIG", "serve", "keys",
                "tokens", "rotate-secret", "migrate", "SECRET_KEY_PREVIOUS",
                "check-config",
            ] {
                #expect(help.stdout.contains(name), "\(name) missing from --help")
            }
            for command in [
                ["keys", "add"], ["keys", "import"], ["tokens", "create"], ["serve"], ["rotate-secret"], ["migrate"],
            ] {
                #expect(try service.cli(command + ["--help"]).status == 0)
            }
        }

        @Test("serve and the management commands name an unreachable PostgreSQL in one line, creating nothing")
        func postgresUnreachable() throws {
            let service = ProxyService(
                upstream: "http://127.0.0.1:9/v1",
                extra: ["OPENAI_PROXY_DATABASE_URL": "postgresql://proxy:hidden-password@127.0.0.1:9/gateway"])
            for command in [["serve"], ["tokens", "list"], ["keys", "list"], ["check-config"]] {
                let result = try service.cli(command)
                #expect(result.status == 1, "\(command)")
                // serve logs its start (the open-file limit) before it reaches the database.
                let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("openai-proxy: ") }
                #expect(lines.count == 1, "\(command): \(result.stderr)")
                #expect(
                    result.stderr.contains("cannot connect to PostgreSQL at postgresql://proxy@127.0.0.1:9/gateway"),
                    "\(command): \(result.stderr)")
                #expect(!result.stderr.contains("hidden-password"), "\(command)")
            }
            #expect(!FileManager.default.fileExists(atPath: service.databasePath))
            #expect(
                !FileManager.default.fileExists(atPath: service.directory.file("data") + "/admin.token"),
                "serve made an admin token it never showed")
        }

        @Test("serve and keys add refuse a secret that is not the one the stored keys were sealed with")
        func foreignSecret() throws {
            let service = ProxyService(
                upstream: "http://127.0.0.1:9/v1", extra: ["SECRET_KEY": "the-installation-secret-0123456789"])
            try service.addKeys(["sk-sealed-under-the-first-secret-0123"])
            let foreign = ["SECRET_KEY": "another-secret-0123456789abcdef"]
            let serve = try service.cli(["serve"], environment: foreign)
            #expect(serve.status == 1)
            let refusal = "openai-proxy: SECRET_KEY is not this installation's secret"
            #expect(serve.stderr.components(separatedBy: refusal).count == 2, "\(serve.stderr)")
            #expect(!serve.stdout.contains("openai-proxy ready"))
            let add = try service.cli(
                ["keys", "add", "--name", "b", "--value", "sk-another-key-0123456789ab"], environment: foreign)
            #expect(add.status == 1)
            #expect(add.stderr.hasPrefix(refusal), "\(add.stderr)")
            #expect(add.stderr.split(separator: "\n").count == 1)
            let list = try service.cli(["keys", "list"])
            #expect(list.status == 0)
            #expect(list.stdout.split(separator: "\n").count == 2, "\(list.stdout)")
        }

        @Test("the README documents every setting with its file key and default")
        func readmeSettings() throws {
            let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent()
            let readme = try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)
            for setting in ConfigurationSetting.all {
                let row =
                    "| `\(setting.environmentName)` | `\(setting.fileKey)` | \(setting.defaultValue) | \(setting.accepts)"
                #expect(readme.contains(row), "README lacks the row for \(setting.environmentName)")
            }
            #expect(readme.contains("make run") && readme.contains("make test"))
        }
    }
}
