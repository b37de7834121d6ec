import Foundation
import Testing

@testable import Shared

@Suite("Configuration")
struct ConfigurationTests {
    private func load(_ environment: [String: String]) throws(ConfigurationError) -> ProxyConfiguration {
        try ConfigurationLoader(environment: environment, cores: 3).load()
    }

    @Test("defaults match the documented ones")
    func defaults() throws {
        let config = try load([:])
        #expect(config.upstreamBaseURL.description == "https://api.openai.com/v1")
        #expect(config.rotationStrategy == .roundRobin)
        #expect(config.secretKey == nil)
        #expect(config.dataDirectory == "./data")
        #expect(config.proxyListen == ListenAddress(host: "0.0.0.0", port: 8000))
        #expect(config.adminListen == ListenAddress(host: "127.0.0.1", port: 5000))
        #expect(config.workers == 3)
        #expect(config.adminToken == nil)
        #expect(config.metricsPublic == false)
        #expect(config.adminHosts == [])
        #expect(config.drainTimeout == .seconds(20))
        #expect(config.maxBodyBytes == 32 * 1024 * 1024)
        #expect(config.logLevel == .info)
        #expect(config.logFormat == .text)
    }

    @Test("every setting is read from its environment variable")
    func environment() throws {
        let config = try load([
            "OPENAI_API_BASE_URL": "http://127.0.0.1:9000/v1/",
            "KEY_ROTATION_STRATEGY": "least_used",
            "SECRET_KEY": "0123456789abcdef-secret",
            "OPENAI_PROXY_DATA_DIR": "/var/lib/op/",
            "OPENAI_PROXY_LISTEN": "[::1]:8080",
            "OPENAI_PROXY_ADMIN_LISTEN": ":5001",
            "OPENAI_PROXY_WORKERS": "4",
            "OPENAI_PROXY_ADMIN_TOKEN": "admin-token-0123456789",
            "OPENAI_PROXY_METRICS_PUBLIC": "true",
            "OPENAI_PROXY_ADMIN_HOSTS": " Admin.Example.com , proxy.internal:8443",
            "OPENAI_PROXY_DRAIN_TIMEOUT": "1500ms",
            "OPENAI_PROXY_MAX_BODY_BYTES": "2MiB",
            "LOG_LEVEL": "warn",
            "LOG_FORMAT": "json",
        ])
        #expect(config.upstreamBaseURL.url(forPath: "/chat/completions") == "http://127.0.0.1:9000/v1/chat/completions")
        #expect(config.rotationStrategy == .leastUsed)
        #expect(config.secretKey == "0123456789abcdef-secret")
        #expect(config.dataDirectory == "/var/lib/op")
        #expect(config.proxyListen == ListenAddress(host: "::1", port: 8080))
        #expect(config.adminListen == ListenAddress(host: "0.0.0.0", port: 5001))
        #expect(config.workers == 4)
        #expect(config.adminToken == "admin-token-0123456789")
        #expect(config.metricsPublic == true)
        #expect(config.adminHosts == ["admin.example.com", "proxy.internal:8443"])
        #expect(config.drainTimeout == .milliseconds(1500))
        #expect(config.maxBodyBytes == 2 << 20)
        #expect(config.logLevel == .warning)
        #expect(config.logFormat == .json)
    }

    @Test(
        "a bad value names the setting and what it accepts",
        arguments: [
            ("OPENAI_API_BASE_URL", "ftp://example.com"),
            ("OPENAI_API_BASE_URL", "https://example.com/v1?x=1"),
            ("KEY_ROTATION_STRATEGY", "fastest"),
            ("SECRET_KEY", "short"),
            ("OPENAI_PROXY_LISTEN", "localhost"),
            ("OPENAI_PROXY_LISTEN", "127.0.0.1:99999"),
            ("OPENAI_PROXY_ADMIN_LISTEN", "1.2.3.4:port"),
            ("OPENAI_PROXY_WORKERS", "abc"),
            ("OPENAI_PROXY_WORKERS", "0"),
            ("OPENAI_PROXY_WORKERS", "65"),
            ("OPENAI_PROXY_ADMIN_TOKEN", "tiny"),
            ("OPENAI_PROXY_METRICS_PUBLIC", "maybe"),
            ("OPENAI_PROXY_ADMIN_HOSTS", "a.example,,b.example"),
            ("OPENAI_PROXY_ADMIN_HOSTS", "evil.example/path"),
            ("OPENAI_PROXY_DRAIN_TIMEOUT", "soon"),
            ("OPENAI_PROXY_DRAIN_TIMEOUT", "2h"),
            ("OPENAI_PROXY_MAX_BODY_BYTES", "12"),
            ("OPENAI_PROXY_MAX_BODY_BYTES", "3GiB"),
            ("LOG_LEVEL", "verbose"),
            ("LOG_FORMAT", "xml"),
        ])
    func invalidValue(name: String, value: String) {
        do {
            _ = try load([name: value])
            Issue.record("\(name)=\(value) was accepted")
        } catch {
            let line = error.description
            #expect(line.contains(name))
            if ConfigurationError.secretSettings.contains(name) {
                // A secret's value is never echoed, only its length.
                #expect(!line.contains(value) && line.contains("(\(value.count) characters, hidden)"))
            } else {
                #expect(line.contains("\"\(value)\""))
            }
            #expect(line.contains("expected " + ConfigurationSetting.named(name).accepts))
            #expect(!line.contains("\n"))
        }
    }

    @Test("the config file is read, and the environment wins over it")
    func configFile() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("config.json")
        try #"{"workers": 5, "listen": "127.0.0.1:9999", "key_rotation_strategy": "random", "drain_timeout": 3}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let config = try load(["OPENAI_PROXY_CONFIG": path, "OPENAI_PROXY_WORKERS": "2"])
        #expect(config.workers == 2)
        #expect(config.proxyListen == ListenAddress(host: "127.0.0.1", port: 9999))
        #expect(config.rotationStrategy == .random)
        #expect(config.drainTimeout == .seconds(3))
    }

    @Test("a bad config file value names the file key")
    func configFileBadValue() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("config.json")
        try #"{"workers": "many"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try load(["OPENAI_PROXY_CONFIG": path]) }
        do {
            _ = try load(["OPENAI_PROXY_CONFIG": path])
        } catch {
            #expect(error.description.contains("OPENAI_PROXY_WORKERS"))
            #expect(error.description.contains("key workers"))
        }
    }

    @Test("unknown keys, non-JSON and missing files are rejected")
    func configFileProblems() throws {
        let directory = TemporaryDirectory()
        let unknown = directory.file("unknown.json")
        try #"{"wrokers": 2}"#.write(toFile: unknown, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.unknownFileKey(path: unknown, key: "wrokers")) {
            try load(["OPENAI_PROXY_CONFIG": unknown])
        }
        let broken = directory.file("broken.json")
        try "{workers: 2".write(toFile: broken, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try load(["OPENAI_PROXY_CONFIG": broken]) }
        let boolean = directory.file("bool.json")
        try #"{"workers": true}"#.write(toFile: boolean, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try load(["OPENAI_PROXY_CONFIG": boolean]) }
        #expect(throws: ConfigurationError.self) { try load(["OPENAI_PROXY_CONFIG": directory.file("missing.json")]) }
    }

    @Test("upstream URLs keep their path prefix and port")
    func upstreamURL() throws {
        let url = try #require(UpstreamBaseURL(parsing: "https://[::1]:8443/openai/v1/"))
        #expect(url.host == "::1")
        #expect(url.port == 8443)
        #expect(url.url(forPath: "/models", query: "a=1") == "https://[::1]:8443/openai/v1/models?a=1")
        #expect(UpstreamBaseURL(parsing: "http://user:pw@host/v1") == nil)
        #expect(UpstreamBaseURL(parsing: "http:///v1") == nil)
        #expect(UpstreamBaseURL(parsing: "http://host:0/v1") == nil)
    }
}
