import CSystemd
import Foundation
import Glibc
import Shared

/// What happened to a child, reported from its watcher thread.
enum ChildEvent: Sendable {
    /// The child wrote its readiness byte: it serves.
    case ready(pid_t)
    /// The child ended.
    case exited(pid_t, ExitStatus)
}

/// Starts one child process and watches it on a dedicated thread.
///
/// The child is spawned from that thread and the thread lives exactly as long as the child: Linux delivers
/// the parent-death signal when the spawning *thread* ends, so spawning from a pooled thread could kill a
/// healthy child. The thread then blocks on the readiness pipe, then in `waitpid` for this pid only.
enum ChildProcess {
    /// Why a child could not be started.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// This process's own program image, whatever has happened to its file since it started.
    static let ownImage = "/proc/self/exe"

    /// Spawns `image` (named `executable` in the child's `argv[0]`) with `arguments`; `listener` becomes its
    /// fd 3. Events go to `events`.
    static func spawn(
        executable: String, image: String? = nil, arguments: [String], environment: [String: String],
        listener: Int32?, events: AsyncStream<ChildEvent>.Continuation
    ) throws -> pid_t {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw Failure(description: "pipe: \(errorText())") }
        // Lift both ends above 4 so the dup2 below always changes the descriptor number (clearing close-on-exec).
        let readEnd = fcntl(pipeEnds[0], F_DUPFD_CLOEXEC, 10)
        let writeEnd = fcntl(pipeEnds[1], F_DUPFD_CLOEXEC, 10)
        close(pipeEnds[0])
        close(pipeEnds[1])

        let outcome = SpawnOutcome()
        let thread = Thread {
            var pid: pid_t = 0
            let code = launch(
                &pid, executable: executable, image: image ?? executable, arguments: arguments,
                environment: environment, listener: listener, readinessWriteEnd: writeEnd)
            close(writeEnd)
            outcome.deliver(
                code == 0 ? .success(pid) : .failure(Failure(description: "posix_spawn: \(errorText(code))")))
            guard code == 0 else {
                close(readEnd)
                return
            }
            var byte: UInt8 = 0
            var count: Int
            repeat { count = read(readEnd, &byte, 1) } while count < 0 && errno == EINTR
            close(readEnd)
            if count == 1 { events.yield(.ready(pid)) }
            var status: Int32 = 0
            var waited: pid_t
            repeat { waited = waitpid(pid, &status, 0) } while waited < 0 && errno == EINTR
            events.yield(.exited(pid, waited == pid ? ExitStatus(waitStatus: status) : .exited(-1)))
        }
        thread.name = "child-watch"
        thread.start()
        return try outcome.wait().get()
    }

    private static func launch(
        _ pid: inout pid_t, executable: String, image: String, arguments: [String], environment: [String: String],
        listener: Int32?, readinessWriteEnd: Int32
    ) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let listener {
            posix_spawn_file_actions_adddup2(&actions, listener, ChildContract.listenerDescriptor)
        }
        posix_spawn_file_actions_adddup2(&actions, readinessWriteEnd, ChildContract.readinessDescriptor)
        _ = openai_proxy_spawn_close_from(&actions, ChildContract.readinessDescriptor + 1)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Signals the supervisor traps or ignores must not stay ignored in the child; its own process group
        // keeps a terminal's Ctrl-C away from children, so the supervisor alone decides the shutdown order.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGCHLD] {
            sigaddset(&defaults, signal)
        }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        return posix_spawn(&pid, image, &actions, &attributes, argv, envp)
    }
}

/// Hands the spawn result from the watcher thread back to the caller.
private final class SpawnOutcome: @unchecked Sendable {
    // Safe: `result` is written once before `signal()` and read only after `wait()` returns.
    private let semaphore = DispatchSemaphore(value: 0)
    private var result: Result<pid_t, ChildProcess.Failure>?

    func deliver(_ result: Result<pid_t, ChildProcess.Failure>) {
        self.result = result
        semaphore.signal()
    }

    func wait() -> Result<pid_t, ChildProcess.Failure> {
        semaphore.wait()
        return result!
    }
}
