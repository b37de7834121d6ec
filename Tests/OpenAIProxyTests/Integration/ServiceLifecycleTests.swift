import Foundation
import GRDB
import Testing

extension RealService {
    /// The real binary as a process tree: supervisor, collector, admin and workers.
    @Suite("Service processes", .serialized)
    struct ServiceLifecycleTests {
        private let keys = ["sk-life-aaaaaaaaaaaa-0001", "sk-life-bbbbbbbbbbbb-0002", "sk-life-cccccccccccc-0003"]

        @Test(
            "start-up: every role runs as its own process, READY=1 is sent once all serve, SIGTERM stops all with exit 0"
        )
        func startAndStop() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            let notify = NotifySocket(path: service.directory.file("notify.sock"))
            try service.addKeys(keys)
            try await service.start(environment: ["NOTIFY_SOCKET": notify.path])
            #expect(await eventually { notify.saw("READY=1") })
            #expect(notify.messages.contains { $0.contains("STATUS=serving") })

            let children = service.children()
            let commands = children.map(\.command)
            #expect(commands.filter { $0.hasSuffix(" collector") }.count == 1)
            #expect(commands.filter { $0.hasSuffix(" admin") }.count == 1)
            #expect(commands.filter { $0.contains(" worker --index 0") }.count == 1)
            #expect(commands.filter { $0.contains(" worker --index 1") }.count == 1)
            #expect(children.count == 4)

            let health = try await TestHTTP.send(.GET, service.proxyURL + "/healthz")
            #expect(health.status == 200)
            #expect(try await TestHTTP.send(.GET, service.adminURL + "/healthz").status == 200)

            #expect(await service.stop() == 0)
            #expect(notify.saw("STOPPING=1"))
            for child in children { #expect(!ProcessTable.isAlive(child.pid), "\(child.command) still running") }
        }

        @Test("a worker killed with SIGKILL is replaced and the others keep serving")
        func workerRespawn() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start()
            let before = service.workerPIDs()
            #expect(before.count == 2)
            let victim = try #require(before.first)
            let killedAt = ContinuousClock.now
            kill(victim, SIGKILL)
            // Requests in flight on the killed worker die with it; once it is gone, requests on fresh
            // connections succeed at once: the survivor and the kernel's accept queue carry them.
            #expect(await eventually { !ProcessTable.isAlive(victim) })
            let load = Task {
                var statuses: [Int] = []
                for _ in 0..<20 {
                    statuses.append(
                        try await TestHTTP.chat(service, token: token, headers: ["connection": "close"]).status)
                }
                return statuses
            }
            #expect(await eventually { service.workerPIDs().count == 2 && !service.workerPIDs().contains(victim) })
            print("measured: worker replaced within \(ContinuousClock.now - killedAt)")
            #expect(try await load.value.allSatisfy { $0 == 200 })
            #expect(service.log.contains("restarted worker 0"))
            for _ in 0..<10 { #expect(try await TestHTTP.chat(service, token: token).status == 200) }
            #expect(await service.stop() == 0)
        }

        @Test("kill -9 of the supervisor leaves no child behind")
        func supervisorKilled() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            try await service.start()
            let children = service.children()
            #expect(children.count == 4)
            service.signal(SIGKILL)
            #expect(await eventually { children.allSatisfy { !ProcessTable.isAlive($0.pid) } })
        }

        @Test("a worker that cannot start makes the supervisor give up with a non-zero exit, leaving no child")
        func crashLoop() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try await service.start()
            let worker = try #require(service.workerPIDs().first)
            // Without its secret a new worker exits before it serves: every restart fails to start.
            try FileManager.default.removeItem(atPath: service.directory.file("data") + "/secret.key")
            kill(worker, SIGKILL)
            #expect(await eventually(timeout: .seconds(30)) { !service.isRunning })
            #expect(service.exitStatus == 1)
            #expect(service.log.contains("worker 0 crashed 5 times within"))
            #expect(service.log.contains("before it served; giving up"))
            // Giving up does not hold up the child events: the admin server and the collector are seen to exit on
            // their SIGTERM, not killed at the deadline.
            #expect(!service.log.contains("did not stop in time"))
            #expect(service.children().isEmpty)
        }

        @Test("a worker killed after it served, more often than the crash limit in a minute, is always restarted")
        func servedWorkerAlwaysRestarted() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            let notify = NotifySocket(path: service.directory.file("notify.sock"))
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start(environment: ["NOTIFY_SOCKET": notify.path])
            let serving = "STATUS=serving 127.0.0.1:\(service.proxyPort): 1/1 workers ready"
            func servingReports() -> Int {
                notify.messages.count(where: { $0.split(separator: "\n").contains { $0 == serving } })
            }
            #expect(await eventually { servingReports() == 1 })
            var killed: Set<pid_t> = []
            for round in 0..<7 {
                let worker = try #require(service.workerPIDs().first { !killed.contains($0) })
                killed.insert(worker)
                let reports = servingReports()
                kill(worker, SIGKILL)
                // The supervisor reports the replacement ready only once it signalled readiness: it served.
                #expect(
                    await eventually(timeout: .seconds(20)) { servingReports() > reports },
                    "replacement \(round) never became ready")
            }
            #expect(service.isRunning)
            #expect(try await TestHTTP.chat(service, token: token).status == 200)
            #expect(!service.log.contains("giving up"))
            #expect(await service.stop() == 0)
        }

        @Test("SIGTERM lets an in-flight stream finish before the worker exits")
        func drainsStreams() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start()
            let stream = Task {
                try await TestHTTP.send(
                    .POST, service.proxyURL + "/v1/chat/completions", token: token,
                    json: #"{"model":"gated","stream":true}"#)
            }
            upstream.release(event: 0)
            #expect(await eventually { upstream.traffic.count == 1 })
            service.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(300))
            #expect(service.isRunning, "the supervisor waits for the stream")
            upstream.release(event: 2)
            let response = try await stream.value
            #expect(response.status == 200)
            #expect(response.body.contains("part2") && response.body.hasSuffix("data: [DONE]\n\n"))
            #expect(await eventually(timeout: .seconds(15)) { !service.isRunning })
            #expect(service.exitStatus == 0)
        }

        @Test("a stream that outlasts the drain timeout is cut, its usage row still lands, and the exit is clean")
        func drainTimeoutCutsStreams() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start(environment: ["OPENAI_PROXY_DRAIN_TIMEOUT": "3s"])
            let stream = Task {
                try? await TestHTTP.send(
                    .POST, service.proxyURL + "/v1/chat/completions", token: token,
                    json: #"{"model":"gated","stream":true}"#)
            }
            upstream.release(event: 0)
            #expect(await eventually { upstream.traffic.count == 1 })
            service.signal(SIGTERM)
            // The upstream never sends the rest: only the drain limit ends this stream.
            #expect(await eventually(timeout: .seconds(15)) { !service.isRunning })
            #expect(service.exitStatus == 0)
            let cut = await stream.value
            #expect(cut.map { !$0.body.contains("[DONE]") } ?? true, "the stream was cut, not completed")
            let database = try DatabaseQueue(path: service.databasePath)
            let rows = try await database.read { db in
                try Row.fetchAll(db, sql: "SELECT status, error FROM usage_log").map { row -> (Int, String?) in
                    (row["status"], row["error"])
                }
            }
            #expect(rows.count == 1)
            #expect(rows.first?.0 == 200 && rows.first?.1 == "drain_timeout")
        }

        @Test("SIGHUP replaces every worker one at a time while no request fails")
        func reloadWithoutRefusing() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 2)
            let notify = NotifySocket(path: service.directory.file("notify.sock"))
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start(environment: ["NOTIFY_SOCKET": notify.path])
            let before = Set(service.workerPIDs())
            let load = Task {
                var statuses: [Int] = []
                let deadline = ContinuousClock.now + .seconds(4)
                while ContinuousClock.now < deadline {
                    // A fresh connection per request: a refused or dropped connection shows as -1.
                    let response = try? await TestHTTP.chat(service, token: token, headers: ["connection": "close"])
                    statuses.append(response?.status ?? -1)
                }
                return statuses
            }
            try await Task.sleep(for: .milliseconds(500))
            service.signal(SIGHUP)
            let statuses = await load.value
            #expect(statuses.count > 20)
            #expect(statuses.allSatisfy { $0 == 200 }, "failures: \(statuses.filter { $0 != 200 })")
            #expect(await eventually { service.log.contains("reload complete") })
            // The old workers drain and exit after the reload completes.
            #expect(
                await eventually {
                    let after = Set(service.workerPIDs())
                    return after.count == 2 && after.isDisjoint(with: before)
                }, "\(before) → \(service.workerPIDs())")
            #expect(notify.saw("RELOADING=1"))
            #expect(await service.stop() == 0)
        }

        @Test("a binary replaced on disk is not what SIGHUP starts: new workers run the supervisor's own image")
        func reloadKeepsTheRunningBinary() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let service = ProxyService(upstream: upstream.baseURL, workers: 1)
            try service.addKeys(keys)
            let token = try service.createToken()
            // A copy of the binary, replaced by something else once the service runs (as an upgrade would).
            let installed = service.directory.file("openai-proxy")
            try FileManager.default.copyItem(atPath: ProxyService.binary, toPath: installed)
            try await service.start(binary: installed)
            let before = service.workerPIDs()
            let replacement = service.directory.file("replacement")
            try "#!/bin/sh\nexit 3\n".write(toFile: replacement, atomically: true, encoding: .utf8)
            #expect(chmod(replacement, 0o755) == 0)
            #expect(rename(replacement, installed) == 0)
            service.signal(SIGHUP)
            #expect(await eventually { service.log.contains("reload complete") }, "\(service.log)")
            // "reload complete" comes once the replacement serves; the old worker drains and exits after it.
            #expect(
                await eventually {
                    let now = service.workerPIDs()
                    return now.count == 1 && Set(now).isDisjoint(with: before)
                }, "\(before) → \(service.workerPIDs())")
            let after = service.workerPIDs()
            for pid in after {
                let image = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
                #expect(image.hasSuffix(" (deleted)"), "\(image)")
            }
            #expect(try await TestHTTP.chat(service, token: token).status == 200)
            #expect(await service.stop() == 0)
        }

        @Test("SIGHUP with a secret_key that does not open the stored keys is rejected; the workers stay")
        func reloadForeignSecret() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let directory = TemporaryDirectory()
            let file = directory.file("config.json")
            func writeSecret(_ secret: String) throws {
                try #"{"secret_key": "\#(secret)"}"#.write(toFile: file, atomically: true, encoding: .utf8)
            }
            try writeSecret("the-installation-secret-0123456789")
            let service = ProxyService(upstream: upstream.baseURL, workers: 1, extra: ["OPENAI_PROXY_CONFIG": file])
            try service.addKeys(keys)
            let token = try service.createToken()
            try await service.start()
            let before = service.workerPIDs()
            try writeSecret("a-foreign-secret-0123456789abcdef")
            service.signal(SIGHUP)
            #expect(
                await eventually {
                    service.log.contains(
                        "reload rejected, keeping the running configuration: SECRET_KEY is not this installation's secret"
                    )
                }, "\(service.log)")
            #expect(!service.log.contains("reload complete"))
            #expect(service.workerPIDs() == before)
            #expect(try await TestHTTP.chat(service, token: token).status == 200)
            #expect(await service.stop() == 0)
        }

        @Test("a bad setting stops start-up with one line naming it, exit code 2")
        func badConfiguration() throws {
            let service = ProxyService(upstream: "http://127.0.0.1:9/v1")
            for (name, value) in [
                ("OPENAI_PROXY_WORKERS", "abc"), ("KEY_ROTATION_STRATEGY", "sometimes"),
                ("OPENAI_API_BASE_URL", "nope"),
            ] {
                let result = try service.cli(["serve"], environment: [name: value])
                #expect(result.status == 2)
                let lines = result.stderr.split(separator: "\n")
                #expect(lines.count == 1)
                #expect(result.stderr.contains(name))
                #expect(result.stderr.hasPrefix("openai-proxy: invalid"))
            }
            let check = try service.cli(["check-config"], environment: ["OPENAI_PROXY_DRAIN_TIMEOUT": "forever"])
            #expect(check.status == 2 && check.stderr.contains("OPENAI_PROXY_DRAIN_TIMEOUT"))
            #expect(!FileManager.default.fileExists(atPath: service.databasePath), "a bad setting writes nothing")
            let good = try service.cli(["check-config"])
            #expect(good.status == 0 && good.stdout.contains("configuration OK"))
            // Like every command, it creates and migrates the database when missing, and reports on it.
            #expect(good.stdout.contains("0 key(s), 0 client token(s)"))
            #expect(FileManager.default.fileExists(atPath: service.databasePath))
        }

        @Test("a port already in use stops start-up with one clear line")
        func portInUse() async throws {
            let upstream = try await FakeUpstream.start()
            defer { upstream.stop() }
            let first = ProxyService(upstream: upstream.baseURL, workers: 1)
            try await first.start()
            let second = ProxyService(
                upstream: upstream.baseURL, workers: 1, extra: ["OPENAI_PROXY_LISTEN": "127.0.0.1:\(first.proxyPort)"])
            let result = try second.cli(["serve"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("cannot listen on 127.0.0.1:\(first.proxyPort)"))
            #expect(result.stderr.contains("Address already in use"))
            // The failed start generated no admin token, so the first start that works shows it.
            #expect(!FileManager.default.fileExists(atPath: second.directory.file("data") + "/admin.token"))
            #expect(await first.stop() == 0)
        }
    }
}
