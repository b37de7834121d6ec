import Glibc

/// The process's limit on open files (`RLIMIT_NOFILE`). Docker and many units start with a soft limit of 1,024
/// while the hard limit is far higher; every client connection takes a descriptor (two while it is proxied).
public enum OpenFileLimit {
    /// The soft limit before and after raising, and the hard limit (`Int.max` for unlimited).
    public struct Change: Sendable, Equatable {
        public let before: Int
        public let after: Int
        public let hard: Int
    }

    /// Raises the soft limit to the hard one, for this process and the children it starts afterwards (they
    /// inherit it). Returns what was there and what is set now; nil when the limit cannot be read.
    public static func raiseToHard() -> Change? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        let before = limit.rlim_cur
        if limit.rlim_cur != limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            _ = setrlimit(resource, &raised)
            _ = getrlimit(resource, &limit)
        }
        return Change(before: count(before), after: count(limit.rlim_cur), hard: count(limit.rlim_max))
    }

    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    private static func count(_ value: rlim_t) -> Int {
        value == rlim_t.max ? Int.max : Int(clamping: value)
    }
}
