import EventWaiting
import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Shared
import UnixSignals

/// The supervisor: runs the collector, the admin server and N proxy workers as child processes of the one
/// binary; restarts crashed children; drains on SIGTERM/SIGINT in order (workers, admin, collector);
/// replaces children one at a time on SIGHUP; reports to systemd.
public actor Supervisor: Service {
    private var configuration: ProxyConfiguration
    private let sockets: PreparedSockets
    private let executable: String
    private let childEnvironment: [String: String]
    private let reloadConfiguration: @Sendable () throws -> ProxyConfiguration
    private let policy = RestartPolicy()
    private let logger: Logger
    private let onReady: @Sendable (String) -> Void

    private enum Phase { case starting, running, reloading, stopping, stopped }
    private var phase = Phase.starting
    private var current: [ChildRole: pid_t] = [:]
    private var crashes: [ChildRole: [RestartPolicy.Crash]] = [:]
    private var roles: [pid_t: ChildRole] = [:]
    private var ready: Set<pid_t> = []
    private var retiring: Set<pid_t> = []
    private var events: AsyncStream<ChildEvent>.Continuation?
    private var jobs: AsyncStream<@Sendable () async -> Void>.Continuation?
    private var waits: [(awaited: Awaited, signal: OneShot<Bool>)] = []
    private var finished: CheckedContinuation<Void, any Error>?
    private var outcome: Result<Void, SupervisorError>?
    /// Delivered when the drain is done; set when it begins, so a second `stop` waits for the first.
    private var drained: OneShot<Void>?

    /// A supervisor for `configuration` over sockets bound by `prepare`.
    public init(
        configuration: ProxyConfiguration, sockets: PreparedSockets, executable: String,
        environment: [String: String], reloadConfiguration: @escaping @Sendable () throws -> ProxyConfiguration,
        logger: Logger, onReady: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.onReady = onReady
        self.configuration = configuration
        self.sockets = sockets
        self.executable = executable
        self.reloadConfiguration = reloadConfiguration
        self.logger = logger
        var environment = environment
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
            environment[name] = nil
        }
        environment[ChildContract.supervisorPIDVariable] = String(getpid())
        environment[ChildContract.readinessVariable] = String(ChildContract.readinessDescriptor)
        childEnvironment = environment
    }

    /// Runs until a graceful shutdown completes (returns) or a child keeps crashing (throws).
    public func run() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: ChildEvent.self)
        events = continuation
        let (jobStream, jobContinuation) = AsyncStream.makeStream(of: (@Sendable () async -> Void).self)
        jobs = jobContinuation
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { for await event in stream { await self.handle(event) } }
            group.addTask {
                await withDiscardingTaskGroup { running in
                    for await job in jobStream { running.addTask { await job() } }
                }
            }
            group.addTask { await self.reloadOnHangup() }
            if let interval = SystemdNotifier.watchdogInterval() {
                group.addTask { await self.keepWatchdogFed(every: interval / 2) }
            }
            group.addTask {
                // Throws (and nothing is stopped here) when the group ends because the supervisor gave up.
                guard (try? await gracefulShutdown()) != nil else { return }
                await self.stop(reason: "shutdown requested")
                await self.finish(.success(()))
            }
            await self.startAll()
            try await self.untilFinished()
            group.cancelAll()
        }
    }

    /// Runs `job` as a child of `run()`'s task group: nothing the supervisor starts outlives it.
    private func background(_ job: @escaping @Sendable () async -> Void) {
        jobs?.yield(job)
    }

    // MARK: - Starting

    private func startAll() async {
        do {
            try spawn(.collector)
            guard await awaitReady(.collector, timeout: .seconds(30)) else {
                throw SupervisorError.startFailed("the stats collector did not become ready")
            }
            try spawn(.admin)
            for index in 0..<configuration.workers { try spawn(.worker(index)) }
            for role in [ChildRole.admin] + (0..<configuration.workers).map(ChildRole.worker) {
                guard await awaitReady(role, timeout: .seconds(30)) else {
                    throw SupervisorError.startFailed("\(role) did not become ready")
                }
            }
        } catch {
            // A shutdown requested during start-up is not a start-up failure.
            guard phase == .starting else { return }
            await fail(error as? SupervisorError ?? .startFailed("\(PostgresErrorText.line(error))"))
            return
        }
        guard phase == .starting else { return }
        phase = .running
        SystemdNotifier.notify("READY=1\nSTATUS=\(statusLine)")
        onReady(
            "proxy http://\(sockets.proxy.address)/v1, admin http://\(sockets.admin.address), "
                + "\(configuration.workers) workers, data \(configuration.dataDirectory)")
    }

    @discardableResult
    private func spawn(_ role: ChildRole) throws -> pid_t {
        guard let events else { throw SupervisorError.startFailed("supervisor is not running") }
        let listener: Int32? =
            switch role {
            case .collector: nil
            case .admin: sockets.admin.descriptor
            case .worker: sockets.proxy.descriptor
            }
        var environment = childEnvironment
        if listener != nil { environment["LISTEN_FDS"] = "1" }
        // The supervisor's own image, not the file at `executable`: a binary replaced on disk (an upgrade) runs
        // only after a restart, so a reload never mixes versions (a new worker's usage lines reaching an old
        // collector that cannot read them).
        let pid = try ChildProcess.spawn(
            executable: executable, image: ChildProcess.ownImage, arguments: role.arguments,
            environment: environment, listener: listener, events: events)
        roles[pid] = role
        if current[role] == nil { current[role] = pid }
        logger.debug("started \(role)", metadata: ["pid": "\(pid)"])
        return pid
    }

    // MARK: - Waiting on children

    /// What a wait of the supervisor waits for; decided by the child events `handle` takes in.
    private enum Awaited {
        /// The role's current child signalled readiness (a restarted one counts); false once stopping.
        case ready(ChildRole)
        /// This child signalled readiness; false when it ended first or stopping began.
        case readyPID(pid_t)
        /// Every one of these children was reaped.
        case gone([pid_t])
    }

    /// True or false once decided, nil while still open.
    private func outcome(_ awaited: Awaited) -> Bool? {
        switch awaited {
        case .ready(let role):
            if phase == .stopping || phase == .stopped { return false }
            if let pid = current[role], ready.contains(pid) { return true }
            return nil
        case .readyPID(let pid):
            if ready.contains(pid) { return true }
            if roles[pid] == nil || phase == .stopping { return false }
            return nil
        case .gone(let pids):
            return pids.allSatisfy { roles[$0] == nil } ? true : nil
        }
    }

    /// Waits until `awaited` is decided, woken by the event that decides it; false at `timeout`.
    private func wait(for awaited: Awaited, timeout: Duration) async -> Bool {
        if let decided = outcome(awaited) { return decided }
        let signal = OneShot<Bool>()
        waits.append((awaited, signal))
        let result = await signal.value(timeout: max(.zero, timeout), fallback: false)
        waits.removeAll { $0.signal === signal }
        return result
    }

    /// Wakes the waits the last change decided.
    private func settleWaits() {
        waits.removeAll { wait in
            guard let decided = outcome(wait.awaited) else { return false }
            wait.signal.deliver(decided)
            return true
        }
    }

    private func awaitReady(_ role: ChildRole, timeout: Duration) async -> Bool {
        await wait(for: .ready(role), timeout: timeout)
    }

    private func awaitReady(pid: pid_t, timeout: Duration) async -> Bool {
        await wait(for: .readyPID(pid), timeout: timeout)
    }

    // MARK: - Children ending

    private func handle(_ event: ChildEvent) {
        defer { settleWaits() }
        switch event {
        case .ready(let pid):
            guard roles[pid] != nil else { return }
            ready.insert(pid)
            if phase == .running { SystemdNotifier.notify("STATUS=\(statusLine)") }
        case .exited(let pid, let status):
            let served = ready.remove(pid) != nil
            let role = roles.removeValue(forKey: pid)
            if retiring.remove(pid) != nil {
                logger.info(
                    "replaced \(role.map(String.init(describing:)) ?? "child") exited",
                    metadata: ["pid": "\(pid)", "status": "\(status)"])
                return
            }
            guard let role, current[role] == pid else { return }
            current[role] = nil
            if phase == .stopping || phase == .stopped { return }
            logger.error(
                "\(role) exited unexpectedly",
                metadata: ["pid": "\(pid)", "status": "\(status)", "served": "\(served)"])
            crashed(role, served: served)
        }
    }

    /// `served`: the child had signalled readiness; only children that never did count towards giving up.
    /// Never waits itself: `handle` must keep taking events, which the stop that giving up starts waits on.
    private func crashed(_ role: ChildRole, served: Bool) {
        switch policy.decide(history: &crashes[role, default: []], now: .now, served: served) {
        case .giveUp(let count):
            let error = SupervisorError.crashLoop(
                "\(role) crashed \(count) times within \(policy.window) before it served; giving up")
            background { await self.fail(error) }
        case .restart(let delay):
            if phase == .running { SystemdNotifier.notify("STATUS=\(statusLine)") }
            background {
                // The backoff; cancelled only when the supervisor ends, and then nothing is restarted.
                if delay > .zero { try? await Task.sleep(for: delay) }
                guard !Task.isCancelled else { return }
                await self.restart(role)
            }
        }
    }

    private func restart(_ role: ChildRole) async {
        guard phase != .stopping, phase != .stopped, current[role] == nil else { return }
        if case .worker(let index) = role, index >= configuration.workers { return }
        do {
            let pid = try spawn(role)
            logger.info("restarted \(role)", metadata: ["pid": "\(pid)"])
        } catch {
            logger.error("could not restart \(role): \(PostgresErrorText.line(error))")
            crashed(role, served: false)
        }
    }

    // MARK: - Reloading

    private func reloadOnHangup() async {
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            await reload()
        }
    }

    /// Re-reads the configuration and replaces workers, then the admin server, one at a time: each
    /// replacement serves before its predecessor is told to drain, so no connection is refused.
    func reload() async {
        guard phase == .running else {
            logger.warning("SIGHUP ignored while \(phase)")
            return
        }
        phase = .reloading
        SystemdNotifier.notify("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())\nSTATUS=reloading")
        defer {
            if phase == .reloading {
                phase = .running
                SystemdNotifier.notify("READY=1\nSTATUS=\(statusLine)")
            }
        }
        let next: ProxyConfiguration
        do {
            next = try reloadConfiguration()
        } catch {
            logger.error("reload rejected, keeping the running configuration: \(error)")
            return
        }
        for (name, changed) in [
            ("OPENAI_PROXY_LISTEN", next.proxyListen != configuration.proxyListen),
            ("OPENAI_PROXY_ADMIN_LISTEN", next.adminListen != configuration.adminListen),
            ("OPENAI_PROXY_DATA_DIR", next.dataDirectory != configuration.dataDirectory),
            ("OPENAI_PROXY_DATABASE_URL", next.database != configuration.database),
        ] where changed {
            logger.warning("\(name) changed; it takes effect at the next restart, not on reload")
        }
        var applied = next
        applied.proxyListen = configuration.proxyListen
        applied.adminListen = configuration.adminListen
        applied.dataDirectory = configuration.dataDirectory
        applied.database = configuration.database
        if applied.secretKey != configuration.secretKey || applied.secretKeyPrevious != configuration.secretKeyPrevious
        {
            // New children would start with this secret: it must open what is stored, as at start.
            do {
                try await SecretCheck.verify(SecretMaterial.box(for: applied, create: false), configuration: applied)
            } catch {
                logger.error("reload rejected, keeping the running configuration: \(error)")
                return
            }
        }
        let previousWorkers = configuration.workers
        configuration = applied
        logger.info("reloading", metadata: ["workers": "\(applied.workers)"])

        for index in 0..<max(previousWorkers, applied.workers) {
            guard phase == .reloading else { return }
            if index < applied.workers {
                await replace(.worker(index))
            } else if let old = current.removeValue(forKey: .worker(index)) {
                retire(old)
            }
        }
        await replace(.admin)
        logger.info("reload complete")
    }

    private func replace(_ role: ChildRole) async {
        let old = current[role]
        let new: pid_t
        do {
            new = try spawn(role)
        } catch {
            logger.error("reload: could not start a new \(role): \(error)")
            return
        }
        guard await awaitReady(pid: new, timeout: .seconds(30)) else {
            logger.error("reload: new \(role) did not become ready; keeping the old one", metadata: ["pid": "\(new)"])
            if roles[new] != nil { kill(new, SIGKILL) }
            if current[role] == new { current[role] = old }
            return
        }
        current[role] = new
        if let old, old != new { retire(old) }
    }

    private func retire(_ pid: pid_t) {
        guard roles[pid] != nil else { return }
        retiring.insert(pid)
        kill(pid, SIGTERM)
        // It drains on its own within the budget; this is the backstop for one that does not exit.
        let limit = configuration.drainTimeout
        background {
            guard await !self.wait(for: .gone([pid]), timeout: limit), !Task.isCancelled else { return }
            await self.killIfStillRetiring(pid)
        }
    }

    private func killIfStillRetiring(_ pid: pid_t) {
        // Still in `roles`, so not reaped yet: the pid cannot have been reused.
        guard retiring.contains(pid), roles[pid] != nil else { return }
        logger.warning(
            "reload: old worker did not exit within the drain timeout; killing it", metadata: ["pid": "\(pid)"])
        kill(pid, SIGKILL)
    }

    // MARK: - Stopping

    /// Drains in order: workers finish in-flight requests (up to most of the drain timeout), then the admin
    /// server stops, then the collector commits the last rows. Every child is gone within the drain timeout.
    func stop(reason: String) async {
        if let drained {
            await drained.value
            return
        }
        let done = OneShot<Void>()
        drained = done
        await drain(reason: reason)
        done.deliver(())
    }

    private func drain(reason: String) async {
        phase = .stopping
        // Start-up and reload waits for readiness end now.
        settleWaits()
        SystemdNotifier.notify("STOPPING=1\nSTATUS=draining")
        logger.info("stopping: \(reason)")
        let start = ContinuousClock.now
        let drain = configuration.drainTimeout
        // Workers get most of it; what is left is split so the collector always has its own slice.
        let workerBudget = configuration.workerDrainBudget
        let rest = drain - workerBudget
        await terminate(where: { $0.isWorker }, until: start + workerBudget)
        await terminate(
            where: { $0 == .admin }, until: min(ContinuousClock.now + .seconds(1), start + workerBudget + rest * 0.4))
        await terminate(where: { $0 == .collector }, until: start + drain - min(.milliseconds(100), drain * 0.02))
        phase = .stopped
    }

    /// SIGTERM to matching children, SIGKILL to those still there at `deadline`, then waits for them to go.
    private func terminate(where matches: (ChildRole) -> Bool, until deadline: ContinuousClock.Instant) async {
        let pids = roles.filter { matches($0.value) }.map(\.key)
        for pid in pids { kill(pid, SIGTERM) }
        _ = await wait(for: .gone(pids), timeout: deadline - .now)
        let stubborn = pids.filter { roles[$0] != nil }
        for pid in stubborn {
            logger.warning(
                "\(roles[pid].map(String.init(describing:)) ?? "child") did not stop in time; killing",
                metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
        }
        _ = await wait(for: .gone(stubborn), timeout: .seconds(1))
    }

    private func fail(_ error: SupervisorError) async {
        guard outcome == nil else { return }
        logger.critical("\(PostgresErrorText.line(error))")
        // Children must not outlive us; a fast, bounded stop.
        await stop(reason: "\(PostgresErrorText.line(error))")
        finish(.failure(error))
    }

    private func finish(_ result: Result<Void, SupervisorError>) {
        guard outcome == nil else { return }
        outcome = result
        finished?.resume(with: result.mapError { $0 as any Error })
        finished = nil
    }

    private func untilFinished() async throws {
        if let outcome { return try outcome.get() }
        try await withCheckedThrowingContinuation { finished = $0 }
    }

    // MARK: - systemd

    private func keepWatchdogFed(every interval: Duration) async {
        while !Task.isCancelled {
            SystemdNotifier.notify("WATCHDOG=1")
            try? await Task.sleep(for: interval)
        }
    }

    private var statusLine: String {
        let workersReady = (0..<configuration.workers).filter { current[.worker($0)].map(ready.contains) ?? false }
            .count
        return "serving \(sockets.proxy.address): \(workersReady)/\(configuration.workers) workers ready"
    }

    private static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}

/// Why the supervisor stopped on its own.
public enum SupervisorError: Error, Equatable, CustomStringConvertible {
    /// A child did not come up.
    case startFailed(String)
    /// A child kept crashing.
    case crashLoop(String)

    public var description: String {
        switch self {
        case .startFailed(let reason): return "start-up failed: \(reason)"
        case .crashLoop(let reason): return reason
        }
    }
}
