import ArgumentParser
import Shared

/// `openai-proxy`: the one binary — the supervisor (`serve`), the management commands, and the child roles.
@main
struct OpenAIProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openai-proxy",
        abstract: "A self-hosted OpenAI gateway sharing a pool of upstream API keys behind one endpoint.",
        discussion: settingsHelp,
        subcommands: [
            ServeCommand.self, KeysCommand.self, TokensCommand.self, RotateSecretCommand.self, MigrateCommand.self,
            CheckConfigCommand.self,
            WorkerRoleCommand.self, AdminRoleCommand.self, CollectorRoleCommand.self,
        ],
        defaultSubcommand: ServeCommand.self
    )

    /// Runs the command; a command line that does not parse is reported in one line (exit 64), not
    /// with ArgumentParser's usage block, which `--help` shows instead.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            guard code == .validationFailure else { exit(withError: error) }
            let brief = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid command line"
            CommandSupport.printError("\(brief.hasPrefix("Error: ") ? String(brief.dropFirst(7)) : brief) (see --help)")
            exit(withError: ExitCode(code.rawValue))
        }
    }

    /// The settings table shown by `--help`, from the same list the loader reads (lines kept under 80
    /// columns so the help formatter does not re-wrap them).
    static var settingsHelp: String {
        var lines = [
            "Settings come from the environment, or from a JSON file named by",
            "\(ConfigurationSetting.configFileVariable) (file keys in brackets); the environment wins.",
            "A bad value stops start-up with one line naming it, and exit code 2.",
            "",
        ]
        for setting in ConfigurationSetting.all {
            lines.append("  \(setting.environmentName) [\(setting.fileKey)]")
            lines.append("      \(setting.summary)")
            lines.append("      default: \(setting.defaultValue)")
            lines.append("      accepts: \(setting.accepts)")
        }
        return lines.joined(separator: "\n")
    }
}
