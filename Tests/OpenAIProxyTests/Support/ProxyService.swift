import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// The real `openai-proxy` binary run as a test subject: its own data directory and ports, the CLI, and
/// `serve` as a real process tree.
final class ProxyService: Sendable {
    /// Where the service keeps its data.
    let directory = TemporaryDirectory()
    /// The proxy port.
    let proxyPort = freePort()
    /// The admin port.
    let adminPort = freePort()
    /// The service's environment (configuration).
    let environment: [String: String]
    private let process = Mutex<Process?>(nil)
    private let output = OutputLog()

    /// The binary under test: `OPENAI_PROXY_BIN`, else this checkout's debug build.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["OPENAI_PROXY_BIN"], !path.isEmpty { return path }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return repository.appendingPathComponent(".build/debug/openai-proxy").path
    }

    /// A service forwarding to `upstream` with `workers` workers; `extra` adds or overrides settings.
    init(upstream: String, workers: Int = 2, extra: [String: String] = [:]) {
        var environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "OPENAI_PROXY_DATA_DIR": directory.file("data"),
            "OPENAI_API_BASE_URL": upstream,
            "OPENAI_PROXY_LISTEN": "127.0.0.1:\(proxyPort)",
            "OPENAI_PROXY_ADMIN_LISTEN": "127.0.0.1:\(adminPort)",
            "OPENAI_PROXY_WORKERS": String(workers),
            "OPENAI_PROXY_DRAIN_TIMEOUT": "10s",
            "LOG_LEVEL": "info",
        ]
        environment.merge(extra) { _, new in new }
        self.environment = environment
    }

    /// `http://127.0.0.1:<proxy port>`.
    var proxyURL: String { "http://127.0.0.1:\(proxyPort)" }
    /// `http://127.0.0.1:<admin port>`.
    var adminURL: String { "http://127.0.0.1:\(adminPort)" }
    /// The database file.
    var databasePath: String { directory.file("data") + "/openai_proxy.db" }
    /// The generated admin token.
    var adminToken: String {
        (try? String(contentsOfFile: directory.file("data") + "/admin.token", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// What `serve` printed so far (stdout and stderr).
    var log: String { output.text }

    /// The outcome of one CLI run.
    struct CommandResult: Sendable {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `openai-proxy <arguments>` to completion.
    @discardableResult
    func cli(
        _ arguments: [String], stdin: String? = nil, environment extra: [String: String] = [:]
    ) throws
        -> CommandResult
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.environment = environment.merging(extra) { _, new in new }
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Adds upstream keys through the CLI.
    func addKeys(_ values: [String]) throws {
        for (index, value) in values.enumerated() {
            let result = try cli(["keys", "add", "--name", "key\(index)", "--value", value])
            precondition(result.status == 0, "keys add failed: \(result.stderr)")
        }
    }

    /// Creates a client token through the CLI and returns its value (the last line of stdout).
    func createToken(name: String = "test") throws -> String {
        let result = try cli(["tokens", "create", "--name", name])
        precondition(result.status == 0, "tokens create failed: \(result.stderr)")
        return result.stdout.split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Starts `openai-proxy serve` (extra environment allowed; `binary` instead of the one under test) and waits
    /// until it reports ready.
    func start(
        environment extra: [String: String] = [:], waitUntilReady: Bool = true, binary: String = ProxyService.binary
    ) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve"]
        process.environment = environment.merging(extra) { _, new in new }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        output.collect(from: pipe.fileHandleForReading)
        self.process.withLock { $0 = process }
        if waitUntilReady {
            let ready = await eventually(timeout: .seconds(60)) {
                log.contains("openai-proxy ready") || !process.isRunning
            }
            guard ready, process.isRunning else {
                throw ServiceError.notReady(log: log)
            }
        }
    }

    /// The supervisor's pid.
    var supervisorPID: pid_t { process.withLock { $0?.processIdentifier ?? 0 } }

    /// Whether the supervisor is still running.
    var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    /// The supervisor's exit status once it ended (nil while running).
    var exitStatus: Int32? {
        process.withLock { process in
            guard let process, !process.isRunning else { return nil }
            return process.terminationStatus
        }
    }

    /// The supervisor's children and their command lines.
    func children() -> [(pid: pid_t, command: String)] {
        ProcessTable.children(of: supervisorPID)
    }

    /// Pids of the worker processes.
    func workerPIDs() -> [pid_t] {
        children().filter { $0.command.contains(" worker ") }.map(\.pid)
    }

    /// Sends `signal` to the supervisor.
    func signal(_ signal: Int32) {
        kill(supervisorPID, signal)
    }

    /// SIGTERM, then waits for the supervisor to exit; returns its exit status (nil on timeout, then SIGKILLs).
    @discardableResult
    func stop(timeout: Duration = .seconds(30)) async -> Int32? {
        guard isRunning else { return exitStatus }
        signal(SIGTERM)
        if await eventually(timeout: timeout, { !isRunning }) { return exitStatus }
        signal(SIGKILL)
        _ = await eventually(timeout: .seconds(5)) { !isRunning }
        return nil
    }

    deinit {
        if let process = process.withLock({ $0 }), process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    enum ServiceError: Error, CustomStringConvertible {
        case notReady(log: String)

        var description: String {
            switch self {
            case .notReady(let log): return "service did not become ready; its output:\n\(log)"
            }
        }
    }
}

/// Text a process wrote, collected as it arrives.
final class OutputLog: Sendable {
    private let storage = Mutex("")

    /// Everything so far.
    var text: String { storage.withLock { $0 } }

    /// Adds what just arrived.
    func append(_ more: String) {
        storage.withLock { $0 += more }
    }

    /// Appends everything `handle` yields until its end, read by blocking reads on a thread of its own.
    func collect(from handle: FileHandle) {
        // Not `readabilityHandler`: tearing down its libdispatch read source races the descriptor's close and
        // crashed the test runner in `_dispatch_event_loop_drain` (swift-corelibs-libdispatch#949).
        let thread = Thread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { return }
                append(String(decoding: data, as: UTF8.self))
            }
        }
        thread.name = "service output"
        thread.start()
    }
}

/// A response as a test sees it.
struct TestResponse: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: String

    /// The body parsed as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    /// `error.code` of an OpenAI-style error body.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}

/// Small HTTP helpers over AsyncHTTPClient.
enum TestHTTP {
    /// Sends one request and collects the whole answer.
    static func send(
        _ method: HTTPMethod, _ url: String, token: String? = nil, json: String? = nil, headers: [String: String] = [:]
    ) async throws -> TestResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: body))
    }

    /// A chat completion through the proxy.
    static func chat(
        _ service: ProxyService, token: String?, model: String = "gpt-test", headers: [String: String] = [:]
    ) async throws -> TestResponse {
        try await send(
            .POST, service.proxyURL + "/v1/chat/completions", token: token,
            json: #"{"model":"\#(model)","messages":[{"role":"user","content":"hi"}]}"#, headers: headers)
    }
}

extension ProxyService {
    /// Runs `body` with a service (`workers`, `extra` settings) in front of a new fake upstream, holding
    /// `keys` and one client token; prints the service's log when `body` throws, then expects a clean stop.
    /// Returns the stopped service, for what only its exit shows (its whole log).
    @discardableResult
    static func serving(
        keys: [String], workers: Int = 2, extra: [String: String] = [:],
        _ body: (ProxyService, FakeUpstream, String) async throws -> Void
    ) async throws -> ProxyService {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        let service = ProxyService(upstream: upstream.baseURL, workers: workers, extra: extra)
        try service.addKeys(keys)
        let token = try service.createToken()
        try await service.start()
        do {
            try await body(service, upstream, token)
        } catch {
            print(service.log)
            throw error
        }
        #expect(await service.stop() == 0)
        return service
    }
}
