import GRDB

/// The settings an operator may change while the service runs (`PUT /api/settings`): the configuration's
/// values with the `settings` table's overrides applied. A change bumps the pool generation, so a worker
/// that reloads its snapshot on a generation change applies it within its refresh interval.
public struct LiveSettings: Sendable, Equatable {
    /// How a worker picks an upstream key.
    public var rotationStrategy: RotationStrategy
    /// Largest request body a worker accepts (413 beyond).
    public var maxBodyBytes: Int
    /// How long connecting to the upstream may take, in seconds.
    public var upstreamConnectTimeoutSeconds: Int
    /// How long an attempt waits for the answer's first byte before the next key is tried, in seconds.
    public var firstByteTimeoutSeconds: Int
    /// The settings set through the API (the others are the configuration's values, which workers use
    /// exactly, below the second).
    public var overridden: Set<LiveSetting> = []

    /// The values in force when nothing was overridden: the configuration's (timeouts rounded up to whole
    /// seconds for display).
    public static func defaults(_ configuration: ProxyConfiguration) -> LiveSettings {
        LiveSettings(
            rotationStrategy: configuration.rotationStrategy, maxBodyBytes: configuration.maxBodyBytes,
            upstreamConnectTimeoutSeconds: min(60, Int(configuration.connectTimeout.inSeconds.rounded(.up))),
            firstByteTimeoutSeconds: min(3600, Int(configuration.firstByteTimeout.inSeconds.rounded(.up))))
    }

    /// The settings in force: `defaults(configuration)` with every valid override from the `settings` table.
    /// A stored value that no longer parses is ignored (the default applies), never fatal.
    public static func load(_ db: Database, configuration: ProxyConfiguration) throws -> LiveSettings {
        resolved(configuration, overrides: try overrides(db))
    }

    /// `defaults(configuration)` with every valid one of `overrides` (by setting name) applied.
    public static func resolved(_ configuration: ProxyConfiguration, overrides: [String: String]) -> LiveSettings {
        var settings = defaults(configuration)
        for (name, value) in overrides {
            guard let setting = LiveSetting(rawValue: name), (try? setting.apply(value, to: &settings)) != nil else {
                continue
            }
            settings.overridden.insert(setting)
        }
        return settings
    }

    /// The stored overrides, by setting name.
    public static func overrides(_ db: Database) throws -> [String: String] {
        var overrides: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, value FROM settings") {
            overrides[row["name"]] = row["value"]
        }
        return overrides
    }
}

/// One live setting: its API name and how its stored text is validated and applied.
public enum LiveSetting: String, Sendable, CaseIterable {
    /// `round_robin`, `random` or `least_used`.
    case rotationStrategy = "rotation_strategy"
    /// Bytes, 1024 to 2 GiB.
    case maxBodyBytes = "max_body_bytes"
    /// Seconds, 1 to 60.
    case upstreamConnectTimeoutSeconds = "upstream_connect_timeout_seconds"
    /// Seconds, 1 to 3600.
    case firstByteTimeoutSeconds = "first_byte_timeout_seconds"

    /// What the setting accepts, for error messages and the API document.
    public var accepts: String {
        switch self {
        case .rotationStrategy: return "round_robin, random or least_used"
        case .maxBodyBytes: return "an integer from 1024 to 2147483648"
        case .upstreamConnectTimeoutSeconds: return "an integer from 1 to 60"
        case .firstByteTimeoutSeconds: return "an integer from 1 to 3600"
        }
    }

    /// Sets `settings`' field from `text` (as stored); throws when `text` is not acceptable.
    public func apply(_ text: String, to settings: inout LiveSettings) throws(InputError) {
        let invalid = InputError(field: rawValue, message: "must be \(accepts)")
        switch self {
        case .rotationStrategy:
            guard let strategy = RotationStrategy(rawValue: text) else { throw invalid }
            settings.rotationStrategy = strategy
        case .maxBodyBytes:
            guard let value = Int(text), (1024...(2 << 30)).contains(value) else { throw invalid }
            settings.maxBodyBytes = value
        case .upstreamConnectTimeoutSeconds:
            guard let value = Int(text), (1...60).contains(value) else { throw invalid }
            settings.upstreamConnectTimeoutSeconds = value
        case .firstByteTimeoutSeconds:
            guard let value = Int(text), (1...3600).contains(value) else { throw invalid }
            settings.firstByteTimeoutSeconds = value
        }
    }
}
