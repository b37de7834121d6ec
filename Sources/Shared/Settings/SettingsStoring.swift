/// The `settings` table's operations (live settings an operator overrides), the same on every engine:
/// `SettingsStore` (SQLite) and `PostgresSettingsStore`, held to one behaviour by one suite run against both.
public protocol SettingsStoring: Sendable {
    /// The stored overrides, by setting name.
    func overrides() async throws -> [String: String]
    /// Stores each change (a value, or nil for back to the configuration's value) and `audit`, in one
    /// transaction; `now` (Unix ms) stamps the stored rows. Values are stored as given: validate first.
    func change(_ changes: [(LiveSetting, String?)], now: Int64, audit: AuditEntry?) async throws
}

extension SettingsStoring {
    /// The settings in force: the configuration's with every valid stored override.
    public func load(_ configuration: ProxyConfiguration) async throws -> LiveSettings {
        LiveSettings.resolved(configuration, overrides: try await overrides())
    }
}
