import ArgumentParser
import Shared

/// `openai-proxy check-config`: validates the configuration, prints what is in force, and opens the database
/// (creating and migrating it when missing, like every command) to show that the data directory works.
struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print the resolved settings (secrets masked); exit 2 when invalid.",
        discussion: "Also opens the database (creating and migrating it when missing) and counts its keys and tokens.")

    func run() async throws {
        let c = try CommandSupport.loadConfiguration()
        let values: [(String, String)] = [
            ("OPENAI_API_BASE_URL", c.upstreamBaseURL.description),
            ("KEY_ROTATION_STRATEGY", c.rotationStrategy.rawValue),
            ("SECRET_KEY", c.secretKey.map { "(set, \($0.count) characters)" } ?? "(from \(c.paths.secretKey))"),
            ("SECRET_KEY_PREVIOUS", c.secretKeyPrevious.map { "(set, \($0.count) characters)" } ?? "(unset)"),
            ("OPENAI_PROXY_DATA_DIR", c.dataDirectory),
            ("OPENAI_PROXY_DATABASE_URL", Self.shown(c.database)),
            ("OPENAI_PROXY_LISTEN", c.proxyListen.description),
            ("OPENAI_PROXY_ADMIN_LISTEN", c.adminListen.description),
            ("OPENAI_PROXY_WORKERS", String(c.workers)),
            (
                "OPENAI_PROXY_ADMIN_TOKEN",
                c.adminToken.map { "(set, \($0.count) characters)" } ?? "(from \(c.paths.adminToken))"
            ),
            ("OPENAI_PROXY_DRAIN_TIMEOUT", "\(c.drainTimeout)"),
            ("OPENAI_PROXY_MAX_BODY_BYTES", String(c.maxBodyBytes)),
            ("LOG_LEVEL", c.logLevel.rawValue),
            ("LOG_FORMAT", c.logFormat.rawValue),
            ("OPENAI_PROXY_USAGE", c.usageEnabled ? "on" : "off"),
            ("OPENAI_PROXY_SPOOL_MAX_BYTES", String(c.spoolMaxBytes)),
            ("OPENAI_PROXY_LOG_RETENTION_DAYS", String(c.logRetentionDays)),
            ("OPENAI_PROXY_OBJECT_RETENTION_DAYS", String(c.objectRetentionDays)),
            ("OPENAI_PROXY_CHAT_HISTORY", c.chatHistory.rawValue),
            ("OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES", String(c.chatHistoryMaxBytes)),
            ("OPENAI_PROXY_USAGE_BATCH_INTERVAL", "\(c.usageBatchInterval)"),
            ("OPENAI_PROXY_USAGE_BATCH_ROWS", String(c.usageBatchRows)),
            ("OPENAI_PROXY_CLIENT_HEADER_TIMEOUT", "\(c.clientHeaderTimeout)"),
            ("OPENAI_PROXY_CLIENT_BODY_TIMEOUT", "\(c.clientBodyTimeout)"),
            ("OPENAI_PROXY_WORKER_CONNECTIONS", c.workerConnections.map(String.init) ?? "auto"),
            ("OPENAI_PROXY_BUFFERED_BODY_BYTES", String(c.bufferedBodyBytes)),
            ("OPENAI_PROXY_CONSOLE_VENDOR_DIR", c.consoleVendorDirectory),
            ("OPENAI_PROXY_CONSOLE_DIR", c.consoleDirectory ?? "(none: the files compiled in)"),
        ]
        print(CommandSupport.table(["SETTING", "VALUE"], values.map { [$0.0, $0.1] }))
        let (keys, tokens) = try await CommandSupport.withStores(c) { stores in
            // Listing opens no key value: the box is never used, and no secret is created or read for it.
            let keys = stores.keys(box: SecretBox(secret: "check-config lists, never opens"))
            return (try await keys.list().count, try await stores.tokens.list().count)
        }
        let shown = c.database == .sqlite ? c.paths.database : Self.shown(c.database)
        print("database \(shown): \(keys) key(s), \(tokens) client token(s)")
        print("configuration OK")
    }

    /// The database setting as shown: never a password.
    static func shown(_ database: DatabaseLocation) -> String {
        switch database {
        case .sqlite: return "sqlite: (the data directory's openai_proxy.db)"
        case .postgresql(let location): return location.description
        }
    }
}
