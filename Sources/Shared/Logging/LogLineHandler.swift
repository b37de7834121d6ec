import Foundation
import Glibc
import Logging

/// Writes one line per log event to standard error, as text or JSON, in a single `write(2)` so lines from
/// concurrent threads and processes never interleave.
public struct LogLineHandler: LogHandler {
    /// The component label, such as `worker.1`.
    public let label: String
    /// Text or JSON.
    public let format: LogFormat
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]

    /// A handler for `label`.
    public init(label: String, format: LogFormat, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Installs this handler for every logger in the process; call once, from the entry point.
    public static func bootstrap(role: String, format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            LogLineHandler(label: label == "openai-proxy" ? role : "\(role).\(label)", format: format, level: level)
        }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line: String
        switch format {
        case .text:
            var text = "\(Self.timestamp()) \(event.level) \(label): \(event.message)"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                text += " \(key)=\(value)"
            }
            line = text + "\n"
        case .json:
            var object: [String: String] = [
                "ts": Self.timestamp(), "level": event.level.rawValue, "component": label,
                "message": "\(event.message)",
            ]
            for (key, value) in merged { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            line = (String(data: data, encoding: .utf8) ?? "{}") + "\n"
        }
        line.utf8CString.withUnsafeBufferPointer { buffer in
            _ = Glibc.write(STDERR_FILENO, buffer.baseAddress, buffer.count - 1)
        }
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, now.tv_nsec / 1_000_000)
    }
}
