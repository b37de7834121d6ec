import Foundation
import Shared

/// How the admin chat console reaches the proxy: the proxy's own address and a client token the admin
/// server owns. On SQLite the token's value lives in `DATA_DIR/admin-chat.token` (mode 0600, generated at first
/// start); on PostgreSQL every host derives it from the shared secret, so that the one internal token serves
/// every host's console (a value of each host's own would replace the others'). Its row in `client_tokens` is
/// flagged internal, so it is never listed, changed or revoked through the API, and its requests are served,
/// counted and logged like any client's.
public struct ChatGateway: Sendable {
    /// `http://host:port` of the proxy; a wildcard listen address is reached on loopback.
    public let baseURL: String
    /// The internal client token's value.
    public let token: String

    /// A gateway from its parts.
    public init(baseURL: String, token: String) {
        self.baseURL = baseURL
        self.token = token
    }

    /// The gateway for `configuration`: reads (or creates) the token file, or on PostgreSQL derives the value,
    /// and makes its row current.
    public static func prepare(configuration: ProxyConfiguration, tokens: any TokenStoring) async throws -> ChatGateway
    {
        let value: String
        if case .postgresql = configuration.database {
            value = SecretMaterial.clusterChatToken(
                secret: try SecretMaterial.encryptionSecret(for: configuration, create: false))
        } else {
            let path = configuration.paths.directory + "/admin-chat.token"
            value = try SecretFile.loadOrCreate(at: path) {
                SecretFile.randomToken(prefix: ClientToken.valuePrefix)
            }.value
        }
        _ = try await tokens.replaceInternal(value: value)
        return ChatGateway(baseURL: "http://\(loopbackHost(configuration.proxyListen))", token: value)
    }

    /// `host:port` to connect to for a listen address: `0.0.0.0` and `::` mean this machine.
    static func loopbackHost(_ address: ListenAddress) -> String {
        switch address.host {
        case "0.0.0.0", "": return "127.0.0.1:\(address.port)"
        case "::": return "[::1]:\(address.port)"
        default: return address.description
        }
    }
}
