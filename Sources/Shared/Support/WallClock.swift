import Glibc

/// The wall clock in Unix epoch milliseconds, the unit of every time kept in the database.
public enum WallClock {
    /// Milliseconds since 1970-01-01 UTC.
    public static func nowMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
