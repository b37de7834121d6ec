import CSystemd

/// How a child process ended, decoded from `waitpid`'s status.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    /// It called exit with this code.
    case exited(Int32)
    /// A signal ended it.
    case signaled(Int32)

    init(waitStatus: Int32) {
        if openai_proxy_wifsignaled(waitStatus) != 0 {
            self = .signaled(openai_proxy_wtermsig(waitStatus))
        } else {
            self = .exited(openai_proxy_wexitstatus(waitStatus))
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signal): return "signal \(signal)"
        }
    }
}
