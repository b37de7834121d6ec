import ArgumentParser
import Foundation
import Shared

/// `openai-proxy tokens …`: the tokens clients present instead of an OpenAI key.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens", abstract: "Manage client tokens.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a client token; it is printed once, alone on the last line.")

        @Option(help: "A name for the token (who or what uses it).") var name: String

        func run() async throws {
            let configuration = try CommandSupport.loadConfiguration()
            let (token, value) = try await CommandSupport.withStores(configuration) { stores in
                try await stores.tokens.create(name: name, limits: ClientTokenLimits(), audit: nil)
            }
            print("created token \(token.id ?? 0) \"\(token.name)\"; it is shown only now:")
            print(value)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List client tokens (values masked).")

        func run() async throws {
            let configuration = try CommandSupport.loadConfiguration()
            let all = try await CommandSupport.withStores(configuration) { stores in try await stores.tokens.list() }
            let rows = all.map { token in
                [
                    String(token.id ?? 0), token.name, token.hint, token.status.rawValue, String(token.requestCount),
                    CommandSupport.format(token.lastUsed), CommandSupport.format(token.createdAt),
                ]
            }
            print(CommandSupport.table(["ID", "NAME", "TOKEN", "STATUS", "REQUESTS", "LAST USED", "CREATED"], rows))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a client token by id.")

        @Argument(help: "The token's id (see `tokens list`).") var id: Int64

        func run() async throws {
            let configuration = try CommandSupport.loadConfiguration()
            let result = try await CommandSupport.withStores(configuration) { stores in
                try await stores.tokens.revoke(id: id, audit: nil)
            }
            switch result {
            case .revoked: print("revoked token \(id)")
            case .alreadyRevoked: print("token \(id) was already revoked")
            case .notFound:
                CommandSupport.printError("no token with id \(id)")
                throw ExitCode.failure
            }
        }
    }
}
