import Testing

@testable import Shared

/// The usage pipeline's settings.
@Suite("Usage settings")
struct UsageConfigurationTests {
    private func load(_ environment: [String: String]) throws(ConfigurationError) -> ProxyConfiguration {
        try ConfigurationLoader(environment: environment, cores: 2).load()
    }

    @Test("defaults: usage on, 256 MiB spool, 30 days, chat history off (texts cut to 32 KiB), 100 ms or 1000 rows")
    func defaults() throws {
        let config = try load([:])
        #expect(config.usageEnabled)
        #expect(config.spoolMaxBytes == 256 << 20)
        #expect(config.logRetentionDays == 30)
        #expect(config.objectRetentionDays == 30)
        #expect(config.chatHistory == .off)
        #expect(config.chatHistoryMaxBytes == 32 << 10)
        #expect(config.usageBatchInterval == .milliseconds(100))
        #expect(config.usageBatchRows == 1000)
        #expect(config.paths.spool == "./data/spool")
    }

    @Test("every usage setting is read from its environment variable")
    func environment() throws {
        let config = try load([
            "OPENAI_PROXY_USAGE": "off",
            "OPENAI_PROXY_SPOOL_MAX_BYTES": "1MiB",
            "OPENAI_PROXY_LOG_RETENTION_DAYS": "7",
            "OPENAI_PROXY_OBJECT_RETENTION_DAYS": "90",
            "OPENAI_PROXY_CHAT_HISTORY": "FULL",
            "OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES": "4KiB",
            "OPENAI_PROXY_USAGE_BATCH_INTERVAL": "250ms",
            "OPENAI_PROXY_USAGE_BATCH_ROWS": "50",
        ])
        #expect(!config.usageEnabled)
        #expect(config.spoolMaxBytes == 1 << 20)
        #expect(config.logRetentionDays == 7)
        #expect(config.objectRetentionDays == 90)
        #expect(config.chatHistory == .full)
        #expect(config.chatHistoryMaxBytes == 4096)
        #expect(config.usageBatchInterval == .milliseconds(250))
        #expect(config.usageBatchRows == 50)
    }

    @Test(
        "a bad usage setting names itself and what it accepts",
        arguments: [
            ("OPENAI_PROXY_USAGE", "maybe"),
            ("OPENAI_PROXY_SPOOL_MAX_BYTES", "12"),
            ("OPENAI_PROXY_LOG_RETENTION_DAYS", "0"),
            ("OPENAI_PROXY_CHAT_HISTORY", "everything"),
            ("OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES", "2MiB"),
            ("OPENAI_PROXY_USAGE_BATCH_INTERVAL", "2m"),
            ("OPENAI_PROXY_USAGE_BATCH_ROWS", "0"),
        ])
    func invalid(name: String, value: String) {
        do {
            _ = try load([name: value])
            Issue.record("\(name)=\(value) was accepted")
        } catch {
            #expect(error.description.contains(name))
            #expect(error.description.contains("expected " + ConfigurationSetting.named(name).accepts))
        }
    }

    @Test("chat history is kept for chat, responses and completions paths only")
    func chatPaths() {
        #expect(ChatHistoryMode.recordsPath("/v1/chat/completions"))
        #expect(ChatHistoryMode.recordsPath("/v1/responses"))
        #expect(ChatHistoryMode.recordsPath("/v1/completions"))
        #expect(!ChatHistoryMode.recordsPath("/v1/embeddings"))
        #expect(!ChatHistoryMode.recordsPath("/v1/models"))
    }
}
