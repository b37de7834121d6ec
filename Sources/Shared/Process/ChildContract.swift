import CSystemd
import Glibc

/// What the supervisor and the processes it starts agree on: roles, inherited descriptors and environment.
public enum ChildContract {
    /// The inherited listening socket (systemd's `LISTEN_FDS` convention starts at 3).
    public static let listenerDescriptor: Int32 = 3
    /// The write end of the readiness pipe: a child writes one byte when it serves, then closes it.
    public static let readinessDescriptor: Int32 = 4
    /// Environment variable holding the supervisor's pid, so a child can tell if it was orphaned at birth.
    public static let supervisorPIDVariable = "OPENAI_PROXY_SUPERVISOR_PID"
    /// Environment variable set when `readinessDescriptor` is open.
    public static let readinessVariable = "OPENAI_PROXY_READY_FD"

    /// Ties this process's life to the supervisor's: SIGKILL when it dies, and exit now if it already has.
    public static func dieWithSupervisor(environment: [String: String]) {
        guard let text = environment[supervisorPIDVariable], let expected = Int32(text) else { return }
        _ = openai_proxy_set_parent_death_signal(SIGKILL)
        // The supervisor may have died between spawning us and the prctl above.
        if getppid() != expected { exit(1) }
    }

    /// Tells the supervisor this process is serving; a no-op when it was not started by one.
    public static func signalReady(environment: [String: String]) {
        guard environment[readinessVariable] != nil else { return }
        var byte: UInt8 = 1
        _ = write(readinessDescriptor, &byte, 1)
        close(readinessDescriptor)
    }
}
