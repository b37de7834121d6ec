import ArgumentParser
import Foundation
import KeyProbe
import Shared

/// `openai-proxy keys …`: manage the upstream key pool (works before and while the service runs).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage upstream API keys.",
        subcommands: [Add.self, Import.self, List.self, Test.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add one upstream key.",
            discussion: """
                Pass --value - to read the key from standard input, keeping it out of shell history and ps. \
                An active key is probed at once (GET /models): a key the upstream refuses is stored as invalid, \
                and the models it reaches are learned. An unreachable upstream leaves that to the service.
                """)

        @Option(help: "A name for the key.") var name: String
        @Option(help: "The key itself, or - to read it from standard input.") var value: String
        @Option(help: "active or disabled.") var status: String = KeyStatus.active.rawValue
        @Flag(help: "Do not probe the key now.") var noProbe = false

        func run() async throws {
            guard let status = KeyStatus(rawValue: status), KeyStatus.operatorSettable.contains(status) else {
                CommandSupport.printError("--status must be active or disabled, got \"\(status)\"")
                throw ExitCode(2)
            }
            let value = self.value == "-" ? (readLine(strippingNewline: true) ?? "") : self.value
            let configuration = try CommandSupport.loadConfiguration()
            try await CommandSupport.withKeys(configuration) { keys, stores, box in
                switch try await keys.add(name: name, value: value, status: status) {
                case .added(let key):
                    var line = "added key \(key.id ?? 0) \"\(key.name)\" (\(key.hint)), \(key.status.rawValue)"
                    if !noProbe, key.status == .active, let id = key.id,
                        let report = try await CommandSupport.probeRunner(configuration, stores, box).probe(
                            keyID: id, recordingUnanswered: false)
                    {
                        line = "added key \(id) \"\(key.name)\" (\(key.hint)), \(report.applied.health.status.rawValue)"
                        line += report.probe.error.map { "; probe: \($0)" } ?? "; probe: ok"
                    }
                    print(line)
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
            let summary = try await CommandSupport.withKeys(configuration) { keys, _, _ in
                try await keys.importKeys(text, namePrefix: "imported")
            }
            var line =
                "imported: \(summary.added) added, \(summary.duplicates) duplicate, \(summary.rejected.count) rejected"
            if !summary.rejected.isEmpty {
                line += " (lines \(summary.rejected.prefix(20).map(String.init).joined(separator: ", ")))"
            }
            print(line)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List keys (values masked) with their state, rate-limit headroom and models.",
            discussion: """
                STATE shows when a cooling key returns, or when a quota_exhausted / invalid key is probed next. \
                HEADROOM is what the upstream's last x-ratelimit-remaining-requests / -tokens said (- when unknown). \
                MODELS counts the models the key reached at its last probe (- while unknown).
                """)

        func run() async throws {
            let configuration = try CommandSupport.loadConfiguration()
            let all = try await CommandSupport.withKeys(configuration) { keys, _, _ in try await keys.list() }
            let now = WallClock.nowMs()
            let rows = all.map { key in
                [
                    String(key.id ?? 0), key.name, key.hint, Self.state(key, now: now), Self.headroom(key),
                    key.models.map { String($0.count) } ?? "-", String(key.usageCount), String(key.failureCount),
                    CommandSupport.format(key.lastUsed), key.statusReason ?? "",
                ]
            }
            print(
                CommandSupport.table(
                    [
                        "ID", "NAME", "KEY", "STATE", "HEADROOM", "MODELS", "REQUESTS", "FAILURES", "LAST USED",
                        "REASON",
                    ],
                    rows))
        }

        static func state(_ key: UpstreamKey, now: Int64) -> String {
            guard let at = key.nextProbeAt, key.status != .active, key.status != .disabled else {
                return key.status.rawValue
            }
            let seconds = max(0, (at - now + 999) / 1000)
            let word = key.status == .cooling ? "back" : "probe"
            return "\(key.status.rawValue) (\(word) in \(seconds)s)"
        }

        static func headroom(_ key: UpstreamKey) -> String {
            guard key.rateLimitUpdatedAt != nil else { return "-" }
            let requests = key.rateLimitRemainingRequests.map(String.init) ?? "?"
            let tokens = key.rateLimitRemainingTokens.map(String.init) ?? "?"
            return "\(requests) req / \(tokens) tok"
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Probe a key now: status, latency, models reachable, error; its state follows the result.",
            discussion:
                "Calls the upstream's GET /models with the key (and a 1-token completion for a key out of quota).")

        @Argument(help: "The key's id (see `keys list`).") var id: Int64

        func run() async throws {
            let configuration = try CommandSupport.loadConfiguration()
            let found = try await CommandSupport.withKeys(configuration) { _, stores, box in
                try await CommandSupport.probeRunner(configuration, stores, box).probe(keyID: id)
            }
            guard let report = found else {
                CommandSupport.printError("no key with id \(id)")
                throw ExitCode.failure
            }
            let probe = report.probe
            let latency = String(format: "%.0f ms", probe.latencyMs)
            let models = probe.models.map { "\($0.count) models" } ?? "models unknown"
            let after = report.applied.health.status
            let state = after == report.before ? after.rawValue : "\(report.before.rawValue) → \(after.rawValue)"
            if let error = probe.error {
                print("key \(id): failed in \(latency): \(error); \(models); state \(state)")
                throw ExitCode.failure
            }
            print("key \(id): ok (\(probe.status)) in \(latency); \(models); state \(state)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a key by id.")

        @Argument(help: "The key's id (see `keys list`).") var id: Int64

        func run() async throws {
            let configuration = try CommandSupport.loadConfiguration()
            let removed = try await CommandSupport.withKeys(configuration) { keys, _, _ in
                try await keys.remove(id: id, audit: nil)
            }
            guard removed else {
                CommandSupport.printError("no key with id \(id)")
                throw ExitCode.failure
            }
            print("removed key \(id)")
        }
    }
}
