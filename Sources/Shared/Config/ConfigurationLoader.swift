import Foundation
import Logging
import NIOCore

/// Resolves a `ProxyConfiguration` from defaults, the optional JSON config file and the environment (highest wins).
public struct ConfigurationLoader: Sendable {
    /// The environment to read, usually the process's own.
    public var environment: [String: String]
    /// Cores on this machine, for the default worker count.
    public var cores: Int

    /// A loader over the given environment.
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        cores: Int = System.coreCount
    ) {
        self.environment = environment
        self.cores = cores
    }

    /// Loads and validates every setting; throws the first problem found.
    public func load() throws(ConfigurationError) -> ProxyConfiguration {
        var raw: [String: (value: String, source: String)] = [:]
        if let path = environment[ConfigurationSetting.configFileVariable], !path.isEmpty {
            for (key, value) in try Self.readFile(path) {
                guard let setting = ConfigurationSetting.all.first(where: { $0.fileKey == key }) else {
                    throw .unknownFileKey(path: path, key: key)
                }
                raw[setting.environmentName] = (value, "\(path) key \(key)")
            }
        }
        for setting in ConfigurationSetting.all {
            if let value = environment[setting.environmentName], !value.isEmpty {
                raw[setting.environmentName] = (value, "environment")
            }
        }

        var config = ProxyConfiguration.defaults(cores: cores)
        func parse<T>(_ name: String, _ convert: (String) -> T?) throws(ConfigurationError) -> T? {
            guard let (value, source) = raw[name] else { return nil }
            guard let parsed = convert(value) else {
                let setting = ConfigurationSetting.named(name)
                throw .invalidValue(setting: name, value: value, source: source, accepts: setting.accepts)
            }
            return parsed
        }
        if let v = try parse("OPENAI_API_BASE_URL", UpstreamBaseURL.init(parsing:)) { config.upstreamBaseURL = v }
        if let v = try parse("KEY_ROTATION_STRATEGY", { RotationStrategy(rawValue: $0.trimmingWhitespace()) }) {
            config.rotationStrategy = v
        }
        if let v = try parse("SECRET_KEY", Self.parseSecret) { config.secretKey = v }
        if let v = try parse("SECRET_KEY_PREVIOUS", Self.parseSecret) {
            guard config.secretKey != nil else {
                throw .missingCompanion(setting: "SECRET_KEY_PREVIOUS", needs: "SECRET_KEY")
            }
            config.secretKeyPrevious = v
        }
        if let v = try parse("OPENAI_PROXY_DATA_DIR", Self.parsePath) { config.dataDirectory = v }
        config.database = try database(raw)
        if let v = try parse("OPENAI_PROXY_LISTEN", ListenAddress.init(parsing:)) { config.proxyListen = v }
        if let v = try parse("OPENAI_PROXY_ADMIN_LISTEN", ListenAddress.init(parsing:)) { config.adminListen = v }
        if let v = try parse("OPENAI_PROXY_WORKERS", { Self.parseInteger($0, in: 1...64) }) { config.workers = v }
        if let v = try parse("OPENAI_PROXY_ADMIN_TOKEN", Self.parseSecret) { config.adminToken = v }
        if let v = try parse("OPENAI_PROXY_METRICS_PUBLIC", Self.parseSwitch) { config.metricsPublic = v }
        if let v = try parse("OPENAI_PROXY_ADMIN_HOSTS", Self.parseHostList) { config.adminHosts = v }
        if let v = try parse("OPENAI_PROXY_DRAIN_TIMEOUT", Self.parseDuration) { config.drainTimeout = v }
        if let v = try parse("OPENAI_PROXY_MAX_BODY_BYTES", Self.parseByteSize) { config.maxBodyBytes = v }
        if let v = try parse("OPENAI_PROXY_MAX_ATTEMPTS", { Self.parseInteger($0, in: 1...10) }) {
            config.maxAttempts = v
        }
        if let v = try parse("OPENAI_PROXY_CONNECT_TIMEOUT", Self.parseDuration) { config.connectTimeout = v }
        if let v = try parse("OPENAI_PROXY_FIRST_BYTE_TIMEOUT", Self.parseDuration) { config.firstByteTimeout = v }
        if let v = try parse("OPENAI_PROXY_STREAM_IDLE_TIMEOUT", Self.parseDuration) { config.streamIdleTimeout = v }
        if let v = try parse("OPENAI_PROXY_FAILURE_THRESHOLD", { Self.parseInteger($0, in: 1...100) }) {
            config.keyHealth.failureThreshold = v
        }
        if let v = try parse("OPENAI_PROXY_QUOTA_PROBE_INTERVAL", { Self.parseDuration($0, upTo: Self.week) }) {
            config.keyHealth.quotaProbeInterval = v
        }
        if let v = try parse("OPENAI_PROXY_INVALID_PROBE_INTERVAL", { Self.parseDuration($0, upTo: Self.week) }) {
            config.keyHealth.invalidProbeInterval = v
        }
        if let v = try parse("OPENAI_PROXY_PROBE_MODEL", { Self.parseModel($0) }) { config.probeModel = v }
        if let v = try parse("LOG_LEVEL", Self.parseLogLevel) { config.logLevel = v }
        if let v = try parse("LOG_FORMAT", { LogFormat(rawValue: $0.trimmingWhitespace().lowercased()) }) {
            config.logFormat = v
        }
        if let v = try parse("OPENAI_PROXY_USAGE", Self.parseSwitch) { config.usageEnabled = v }
        if let v = try parse("OPENAI_PROXY_SPOOL_MAX_BYTES", Self.parseByteSize) { config.spoolMaxBytes = v }
        if let v = try parse("OPENAI_PROXY_LOG_RETENTION_DAYS", { Self.parseInteger($0, in: 1...36_500) }) {
            config.logRetentionDays = v
        }
        if let v = try parse("OPENAI_PROXY_OBJECT_RETENTION_DAYS", { Self.parseInteger($0, in: 1...36_500) }) {
            config.objectRetentionDays = v
        }
        if let v = try parse(
            "OPENAI_PROXY_CHAT_HISTORY", { ChatHistoryMode(rawValue: $0.trimmingWhitespace().lowercased()) })
        {
            config.chatHistory = v
        }
        if let v = try parse(
            "OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES",
            { Self.parseByteSize($0).flatMap { $0 <= UsageWire.maximumChatFieldBytes ? $0 : nil } })
        {
            config.chatHistoryMaxBytes = v
        }
        if let v = try parse(
            "OPENAI_PROXY_USAGE_BATCH_INTERVAL", { Self.parseDuration($0).flatMap { $0 <= .seconds(60) ? $0 : nil } })
        {
            config.usageBatchInterval = v
        }
        if let v = try parse("OPENAI_PROXY_USAGE_BATCH_ROWS", { Self.parseInteger($0, in: 1...100_000) }) {
            config.usageBatchRows = v
        }
        if let v = try parse("OPENAI_PROXY_CLIENT_HEADER_TIMEOUT", Self.parseDuration) {
            config.clientHeaderTimeout = v
        }
        if let v = try parse("OPENAI_PROXY_CLIENT_BODY_TIMEOUT", Self.parseDuration) { config.clientBodyTimeout = v }
        if let v = try parse("OPENAI_PROXY_WEBSOCKET_IDLE_TIMEOUT", { Self.parseDuration($0, upTo: 86_400) }) {
            config.webSocketIdleTimeout = v
        }
        if let v = try parse("OPENAI_PROXY_WORKER_CONNECTIONS", Self.parseConnectionCount) {
            config.workerConnections = v
        }
        if let v = try parse("OPENAI_PROXY_BUFFERED_BODY_BYTES", Self.parseByteSize) { config.bufferedBodyBytes = v }
        if let v = try parse("OPENAI_PROXY_CONSOLE_VENDOR_DIR", Self.parsePath) { config.consoleVendorDirectory = v }
        if let v = try parse("OPENAI_PROXY_CONSOLE_DIR", Self.parsePath) { config.consoleDirectory = v }
        return config
    }

    /// The database location from `OPENAI_PROXY_DATABASE_URL`, with the password from the password file or
    /// `PGPASSWORD` when the URL carries none.
    func database(_ raw: [String: (value: String, source: String)]) throws(ConfigurationError) -> DatabaseLocation {
        let passwordFile = raw["OPENAI_PROXY_DATABASE_PASSWORD_FILE"]
        guard let (value, source) = raw["OPENAI_PROXY_DATABASE_URL"] else {
            if passwordFile != nil {
                throw .missingCompanion(
                    setting: "OPENAI_PROXY_DATABASE_PASSWORD_FILE", needs: "OPENAI_PROXY_DATABASE_URL")
            }
            return .sqlite
        }
        var password = environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        if let path = passwordFile?.value {
            guard let data = FileManager.default.contents(atPath: path),
                let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first,
                !line.isEmpty
            else { throw .unreadablePasswordFile(path: path) }
            password = String(line)
        }
        do throws(DatabaseURLError) {
            let location = try DatabaseLocation.parse(value, password: password)
            if location == .sqlite, passwordFile != nil {
                throw DatabaseURLError("OPENAI_PROXY_DATABASE_PASSWORD_FILE is only for a postgresql:// URL")
            }
            return location
        } catch {
            throw .invalidDatabaseURL(source: source, reason: error.reason)
        }
    }

    /// Reads the JSON config file into setting-key → textual value.
    static func readFile(_ path: String) throws(ConfigurationError) -> [(String, String)] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadableFile(path: path, reason: "no such file or not readable")
        }
        let values: [String: FileValue]
        do {
            values = try JSONDecoder().decode([String: FileValue].self, from: data)
        } catch {
            throw .unreadableFile(path: path, reason: "expected a JSON object whose values are strings or numbers")
        }
        let result = values.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value.text) }
        return result
    }

    static func parseSecret(_ text: String) -> String? {
        text.count >= 16 ? text : nil
    }

    static func parsePath(_ text: String) -> String? {
        var path = text.trimmingWhitespace()
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        return path.isEmpty || path.contains("\0") ? nil : path
    }

    /// Seven days in seconds, the longest probe interval.
    static let week = 7 * 86_400.0

    /// `20`, `20s`, `1.5s`, `1500ms`, `2m`, `6h`, `1d` → a duration from 1 ms to `maximum` seconds (default 3600).
    static func parseDuration(_ text: String, upTo maximum: Double) -> Duration? {
        let text = text.trimmingWhitespace().lowercased()
        let suffixes: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var (number, scale) = (Substring(text), 1.0)
        for (suffix, factor) in suffixes where text.hasSuffix(suffix) {
            (number, scale) = (text.dropLast(suffix.count), factor)
            break
        }
        guard let value = Double(number.trimmingWhitespace()), value.isFinite else { return nil }
        let seconds = value * scale
        guard seconds >= 0.001, seconds <= maximum else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// A duration of at most an hour.
    static func parseDuration(_ text: String) -> Duration? {
        parseDuration(text, upTo: 3600)
    }

    static func parseInteger(_ text: String, in range: ClosedRange<Int>) -> Int? {
        Int(text.trimmingWhitespace()).flatMap { range.contains($0) ? $0 : nil }
    }

    /// A model id: 1 to 200 printable ASCII characters without spaces.
    static func parseModel(_ text: String) -> String? {
        let text = text.trimmingWhitespace()
        guard (1...200).contains(text.utf8.count), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return text
    }

    /// `1048576`, `512KiB`, `32MiB`, `1G` … → bytes from 1 KiB to 2 GiB.
    static func parseByteSize(_ text: String) -> Int? {
        let text = text.trimmingWhitespace()
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
            ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30),
            ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1),
        ]
        var digits = Substring(text)
        var multiplier = 1
        for (suffix, factor) in units where text.uppercased().hasSuffix(suffix.uppercased()) {
            digits = text.dropLast(suffix.count)
            multiplier = factor
            break
        }
        guard let value = Int(digits.trimmingWhitespace()) else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow, bytes >= 1024, bytes <= 2 << 30 else { return nil }
        return bytes
    }

    /// `auto` (nil: derived from the open-file limit) or a count from 1 to 1,000,000.
    static func parseConnectionCount(_ text: String) -> Int?? {
        if text.trimmingWhitespace().lowercased() == "auto" { return .some(nil) }
        return parseInteger(text, in: 1...1_000_000).map { .some($0) }
    }

    /// `on` / `off` (also true/false, yes/no, 1/0).
    static func parseSwitch(_ text: String) -> Bool? {
        switch text.trimmingWhitespace().lowercased() {
        case "on", "true", "yes", "1": return true
        case "off", "false", "no", "0": return false
        default: return nil
        }
    }

    /// Comma-separated host names (or `host:port`, `[v6]:port`), lowercased; nil when one is empty or malformed.
    static func parseHostList(_ text: String) -> [String]? {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-:[]_")
        var hosts: [String] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let host = String(part).trimmingWhitespace().lowercased()
            guard !host.isEmpty, host.allSatisfy(allowed.contains) else { return nil }
            hosts.append(host)
        }
        return hosts
    }

    static func parseLogLevel(_ text: String) -> Logger.Level? {
        let text = text.trimmingWhitespace().lowercased()
        return text == "warn" ? .warning : Logger.Level(rawValue: text)
    }
}

/// A config-file value: settings are strings or numbers, read the same way as their environment variables.
private struct FileValue: Decodable {
    let text: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            text = string
        } else if let integer = try? container.decode(Int.self) {
            text = String(integer)
        } else {
            text = String(try container.decode(Double.self))
        }
    }
}
