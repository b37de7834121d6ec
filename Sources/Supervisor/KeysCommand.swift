import ArgumentParser
import Foundation
import Shared

/// `openai-proxy keys …`: manage the upstream key pool (works before and while the service runs).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage upstream API keys.",
        subcommands: [Add.self, Import.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add one upstream key.",
            discussion: "Pass --value - to read the key from standard input, keeping it out of shell history and ps.")

        @Option(help: "A name for the key.") var name: String
        @Option(help: "The key itself, or - to read it from standard input.") var value: String
        @Option(help: "active or disabled.") var status: String = KeyStatus.active.rawValue

        func run() async throws {
            guard let status = KeyStatus(rawValue: status), KeyStatus.operatorSettable.contains(status) else {
                CommandSupport.printError("--status must be active or disabled, got \"\(status)\"")
                throw ExitCode(2)
            }
            let value = self.value == "-" ? (readLine(strippingNewline: true) ?? "") : self.value
            let configuration = try CommandSupport.loadConfiguration()
            let keys = try CommandSupport.keyStore(configuration)
            try await CommandSupport.reporting {
                switch try await keys.add(name: name, value: value, status: status) {
                case .added(let key):
                    print("added key \(key.id ?? 0) \"\(key.name)\" (\(key.hint)), \(key.status.rawValue)")
                case .duplicate(let existing):
                    CommandSupport.printError("this key is already stored as key \(existing)")
                    throw ExitCode.failure
                }
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add many keys, one per line, from a file or - for standard input.",
            discussion: "Blank lines and lines starting with # are skipped; keys already stored are counted, not added."
        )

        @Argument(help: "A file with one key per line, or - for standard input.") var file: String

        func run() async throws {
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let data = FileManager.default.contents(atPath: file) else {
                    CommandSupport.printError("cannot read \(file)")
                    throw ExitCode.failure
                }
                text = String(decoding: data, as: UTF8.self)
            }
            let configuration = try CommandSupport.loadConfiguration()
            let keys = try CommandSupport.keyStore(configuration)
            let summary = try await CommandSupport.reporting { try await keys.importKeys(text) }
            var line =
                "imported: \(summary.added) added, \(summary.duplicates) duplicate, \(summary.rejected.count) rejected"
            if !summary.rejected.isEmpty {
                line += " (lines \(summary.rejected.prefix(20).map(String.init).joined(separator: ", ")))"
            }
            print(line)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (values masked).")

        func run() async throws {
            let configuration = try CommandSupport.loadConfiguration()
            let keys = try CommandSupport.keyStore(configuration)
            let all = try await CommandSupport.reporting { try await keys.list() }
            let rows = all.map { key in
                [
                    String(key.id ?? 0), key.name, key.hint, key.status.rawValue, String(key.usageCount),
                    String(key.failureCount), CommandSupport.format(key.lastUsed),
                ]
            }
            print(CommandSupport.table(["ID", "NAME", "KEY", "STATUS", "REQUESTS", "FAILURES", "LAST USED"], rows))
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a key by id.")

        @Argument(help: "The key's id (see `keys list`).") var id: Int64

        func run() async throws {
            let configuration = try CommandSupport.loadConfiguration()
            let keys = try CommandSupport.keyStore(configuration)
            guard try await CommandSupport.reporting({ try await keys.remove(id: id) }) else {
                CommandSupport.printError("no key with id \(id)")
                throw ExitCode.failure
            }
            print("removed key \(id)")
        }
    }
}
