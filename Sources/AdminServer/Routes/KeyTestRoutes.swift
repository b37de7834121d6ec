import Foundation
import Hummingbird
import KeyProbe
import Shared

/// `POST /api/keys/{id}/test` (one probe now) and `POST /api/keys/test-all` (every key not disabled, in
/// the background, progress at `GET /api/keys/test-all/{run_id}`). A probe's result moves the key's state
/// like any probe (see the key health table in the README).
struct KeyTestRoutes {
    let services: AdminServices

    /// One probe, as answered.
    struct ProbeResult: Encodable, Sendable {
        let keyID: Int64
        let ok: Bool
        /// HTTP status of the probe's last call (0: no answer).
        let status: Int
        let latencyMs: Double
        @NullEncoded var models: [String]?
        @NullEncoded var error: String?
        let stateBefore: String
        let state: String
        enum CodingKeys: String, CodingKey {
            case ok, status, models, error, state
            case keyID = "key_id", latencyMs = "latency_ms", stateBefore = "state_before"
        }

        init(keyID: Int64, _ report: KeyProbeRunner.Report) {
            self.keyID = keyID
            ok = report.probe.error == nil
            status = report.probe.status
            latencyMs = (report.probe.latencyMs * 10).rounded() / 10
            models = report.probe.models
            error = report.probe.error
            stateBefore = report.before.rawValue
            state = report.applied.health.status.rawValue
        }
    }

    /// A test-all run as answered.
    struct RunView: Encodable, Sendable {
        let runID: String
        let total: Int
        let done: Int
        let passed: Int
        let failed: Int
        let finished: Bool
        let results: [ProbeResult]
        enum CodingKeys: String, CodingKey {
            case total, done, passed, failed, finished, results
            case runID = "run_id"
        }
    }

    func register(on api: APIGroup) {
        api.on(.post, "keys/{id}/test") { _, context in
            let id = try PathInput.id(context)
            guard let report = try await services.probes.probe(keyID: id) else {
                throw APIError.notFound("No key with id \(id).")
            }
            try await services.audit.record(
                services.auditEntry(
                    context, action: "key.test", target: "key:\(id)",
                    detail: [
                        "status": .int(Int64(report.probe.status)),
                        "state": .string(report.applied.health.status.rawValue),
                    ]))
            return try JSONResponse.make(ProbeResult(keyID: id, report))
        }
        api.on(.post, "keys/test-all") { _, context in
            let ids = try await services.keys.list().filter { $0.status != .disabled }.compactMap(\.id).sorted()
            let run = await services.testRuns.start(total: ids.count)
            try await services.audit.record(
                services.auditEntry(
                    context, action: "key.test_all", target: nil,
                    detail: ["run_id": .string(run), "total": .int(Int64(ids.count))]))
            guard services.keyTests.start(.init(id: run, keys: ids)) else {
                throw APIError.unavailable(
                    .serviceUnavailable, "The admin server is shutting down; start the key test again.",
                    code: "shutting_down")
            }
            return try JSONResponse.make(
                RunView(
                    runID: run, total: ids.count, done: 0, passed: 0, failed: 0, finished: ids.isEmpty, results: []),
                status: .accepted)
        }
        api.on(.get, "keys/test-all/{run_id}") { _, context in
            let run = try PathInput.string(context, "run_id")
            guard let view = await services.testRuns.view(run) else {
                throw APIError.notFound("No key test run \(run).")
            }
            return try JSONResponse.make(view)
        }
    }

    /// Probes key `id` for test-all run `run` and records the result there.
    static func probe(_ id: Int64, run: String, probes: KeyProbeRunner, runs: KeyTestRuns) async {
        let result: ProbeResult
        do {
            guard let report = try await probes.probe(keyID: id) else {
                await runs.record(nil, in: run)
                return
            }
            result = ProbeResult(keyID: id, report)
        } catch {
            result = ProbeResult(
                keyID: id, ok: false, status: 0, latencyMs: 0, models: nil, error: "\(error)", stateBefore: "unknown",
                state: "unknown")
        }
        await runs.record(result, in: run)
    }
}

extension KeyTestRoutes.ProbeResult {
    init(
        keyID: Int64, ok: Bool, status: Int, latencyMs: Double, models: [String]?, error: String?, stateBefore: String,
        state: String
    ) {
        self.keyID = keyID
        self.ok = ok
        self.status = status
        self.latencyMs = latencyMs
        self.models = models
        self.error = error
        self.stateBefore = stateBefore
        self.state = state
    }
}

/// Progress of test-all runs, kept in memory (the last 20 runs).
actor KeyTestRuns {
    private struct Run {
        var total: Int
        var results: [KeyTestRoutes.ProbeResult] = []
        var skipped = 0
        var finished = false
    }

    private var runs: [(id: String, run: Run)] = []

    /// A new run over `total` keys; returns its id.
    func start(total: Int) -> String {
        let id = UUID().uuidString.lowercased()
        runs.append((id, Run(total: total, finished: total == 0)))
        if runs.count > 20 { runs.removeFirst(runs.count - 20) }
        return id
    }

    /// One key done (nil: the key was removed meanwhile).
    func record(_ result: KeyTestRoutes.ProbeResult?, in id: String) {
        guard let index = runs.firstIndex(where: { $0.id == id }) else { return }
        if let result { runs[index].run.results.append(result) } else { runs[index].run.skipped += 1 }
    }

    /// Every key done.
    func finish(_ id: String) {
        guard let index = runs.firstIndex(where: { $0.id == id }) else { return }
        runs[index].run.finished = true
    }

    /// The run as answered, or nil when unknown.
    func view(_ id: String) -> KeyTestRoutes.RunView? {
        guard let run = runs.first(where: { $0.id == id })?.run else { return nil }
        let results = run.results.sorted { $0.keyID < $1.keyID }
        let passed = results.filter(\.ok).count
        return KeyTestRoutes.RunView(
            runID: id, total: run.total, done: results.count + run.skipped, passed: passed,
            failed: results.count - passed, finished: run.finished, results: results)
    }
}
