/// Why a configuration could not be loaded; its description is the one line shown to the operator.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// A setting has a value it does not accept.
    case invalidValue(setting: String, value: String, source: String, accepts: String)
    /// The config file could not be read or parsed.
    case unreadableFile(path: String, reason: String)
    /// The config file names a key no setting has.
    case unknownFileKey(path: String, key: String)

    public var description: String {
        switch self {
        case .invalidValue(let setting, let value, let source, let accepts):
            return "invalid \(setting)=\"\(value)\" (from \(source)): expected \(accepts)"
        case .unreadableFile(let path, let reason):
            return "cannot read config file \(path) (\(ConfigurationSetting.configFileVariable)): \(reason)"
        case .unknownFileKey(let path, let key):
            let known = ConfigurationSetting.all.map(\.fileKey).joined(separator: ", ")
            return "unknown key \"\(key)\" in config file \(path); known keys: \(known)"
        }
    }
}
