/// Why a configuration could not be loaded; its description is the one line shown to the operator.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// A setting has a value it does not accept.
    case invalidValue(setting: String, value: String, source: String, accepts: String)
    /// A setting that only makes sense with another one came without it.
    case missingCompanion(setting: String, needs: String)
    /// The config file could not be read or parsed.
    case unreadableFile(path: String, reason: String)
    /// The config file names a key no setting has.
    case unknownFileKey(path: String, key: String)
    /// `OPENAI_PROXY_DATABASE_URL` is not a database URL; `reason` never contains its password.
    case invalidDatabaseURL(source: String, reason: String)
    /// `OPENAI_PROXY_DATABASE_PASSWORD_FILE` could not be read or is empty.
    case unreadablePasswordFile(path: String)

    /// Settings whose values are secrets.
    static let secretSettings: Set<String> = ["SECRET_KEY", "SECRET_KEY_PREVIOUS", "OPENAI_PROXY_ADMIN_TOKEN"]

    public var description: String {
        switch self {
        case .invalidValue(let setting, let value, let source, let accepts):
            // A secret's value is never echoed: the line may end up in a log.
            let shown = Self.secretSettings.contains(setting) ? "(\(value.count) characters, hidden)" : "\"\(value)\""
            return "invalid \(setting)=\(shown) (from \(source)): expected \(accepts)"
        case .missingCompanion(let setting, let needs):
            return "\(setting) is set but \(needs) is not: \(setting) only works together with \(needs)"
        case .unreadableFile(let path, let reason):
            return "cannot read config file \(path) (\(ConfigurationSetting.configFileVariable)): \(reason)"
        case .unknownFileKey(let path, let key):
            let known = ConfigurationSetting.all.map(\.fileKey).joined(separator: ", ")
            return "unknown key \"\(key)\" in config file \(path); known keys: \(known)"
        case .invalidDatabaseURL(let source, let reason):
            return "invalid OPENAI_PROXY_DATABASE_URL (from \(source)): \(reason)"
        case .unreadablePasswordFile(let path):
            return "cannot read a password from OPENAI_PROXY_DATABASE_PASSWORD_FILE=\(path): "
                + "no such file, not readable, or empty"
        }
    }
}
