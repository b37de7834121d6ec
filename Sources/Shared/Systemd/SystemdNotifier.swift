import CSystemd

/// Talks to systemd's notify socket through libsystemd; every call is harmless when `NOTIFY_SOCKET` is unset.
public enum SystemdNotifier {
    /// Sends newline-separated `KEY=value` assignments such as `READY=1\nSTATUS=serving`.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// The interval at which `WATCHDOG=1` must be sent, when systemd set `WATCHDOG_USEC` for this process.
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }
}
