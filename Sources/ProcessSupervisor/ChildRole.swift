/// The kinds of process the supervisor runs, each re-executing the one binary with a role argument.
public enum ChildRole: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The stats collector.
    case collector
    /// The admin server.
    case admin
    /// Proxy worker number `index` (from 0).
    case worker(Int)

    /// The command-line arguments after the executable.
    var arguments: [String] {
        switch self {
        case .collector: return ["collector"]
        case .admin: return ["admin"]
        case .worker(let index): return ["worker", "--index", String(index)]
        }
    }

    public var description: String {
        switch self {
        case .collector: return "collector"
        case .admin: return "admin"
        case .worker(let index): return "worker \(index)"
        }
    }

    var isWorker: Bool {
        if case .worker = self { return true }
        return false
    }
}
