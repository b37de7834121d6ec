import Foundation
import GRDB
import Testing

extension RealService {
    /// A client cannot take keys out of rotation by its own requests, and learns nothing of the pool's keys
    /// and accounts: the real service against a fake upstream that answers like OpenAI.
    @Suite("Key health against hostile clients", .serialized)
    struct KeyAbuseTests {
        private let values = ["sk-kh7Qv9XmZ2pLr4TnW8yB", "sk-Jd3Fs8GkH1wQe5RtY6uI", "sk-Zc4Vb7NmA2sDf9GhJ0kP"]

        /// Key name → (status, token whose request marked it), read from the service's database.
        private func states(_ service: ProxyService) throws -> [String: (status: String, markedBy: Int64?)] {
            try DatabaseQueue(path: service.databasePath).read { db in
                var states: [String: (String, Int64?)] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT name, status, marked_by_token FROM keys") {
                    states[row["name"]] = (row["status"], row["marked_by_token"])
                }
                return states
            }
        }

        private func outOfRotation(_ service: ProxyService) throws -> Int {
            try states(service).values.filter { $0.status != "active" }.count
        }

        private func chatCount(_ upstream: FakeUpstream) -> Int {
            upstream.requests.filter { $0.path == "/v1/chat/completions" }.count
        }

        /// Waits until the service's own first probes of every key are done, so that they do not mix with
        /// what the test provokes.
        private func probed(_ service: ProxyService, keys: Int) async throws -> Bool {
            try await eventually {
                try await DatabaseQueue(path: service.databasePath).read { db in
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM keys WHERE models IS NOT NULL") == keys
                }
            }
        }

        @Test("a client's OpenAI-Organization is not forwarded; 401 mismatched_organization marks no key")
        func clientOrganization() async throws {
            try await ProxyService.serving(keys: values) { service, upstream, token in
                #expect(try await probed(service, keys: 3))
                // The fake refuses any request carrying the header, as OpenAI does with another organization's.
                let headers = ["OpenAI-Organization": "org-client", "OpenAI-Project": "proj_client"]
                for _ in 0..<10 {
                    let answer = try await TestHTTP.chat(service, token: token, headers: headers)
                    #expect(answer.status == 200, "\(answer.body)")
                }
                #expect(chatCount(upstream) == 10)
                #expect(try states(service).values.allSatisfy { $0.status == "active" })

                // The upstream refuses with mismatched_organization anyway: the client gets it, every key stays.
                upstream.reset()
                for value in values { upstream.behave(.mismatchedOrganization, for: value) }
                for _ in 0..<10 {
                    let answer = try await TestHTTP.chat(service, token: token, headers: headers)
                    #expect(answer.status == 401)
                    #expect(answer.errorCode == "mismatched_organization")
                }
                #expect(chatCount(upstream) == 10, "no failover for the request's own error")
                #expect(try states(service).values.allSatisfy { $0.status == "active" })
                let events = try await DatabaseQueue(path: service.databasePath).read { db in
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM key_events") ?? -1
                }
                #expect(events == 0)
            }
        }

        @Test("a key a request found invalid is probed within seconds: back to active if it passes, else kept")
        func confirmedByProbe() async throws {
            try await ProxyService.serving(keys: values) { service, upstream, token in
                #expect(try await probed(service, keys: 3))
                let bad = values[1]
                upstream.behave(.unauthorized, for: bad)
                // Until a request meets it: every request is served by failover meanwhile.
                var served: [Int] = []
                let met = try await eventually {
                    served.append(try await TestHTTP.chat(service, token: token).status)
                    return try states(service)["key1"]?.status == "invalid"
                }
                #expect(met)
                #expect(served.allSatisfy { $0 == 200 }, "\(served)")
                let tokenID = try await DatabaseQueue(path: service.databasePath).read { db in
                    try Int64.fetchOne(db, sql: "SELECT id FROM client_tokens WHERE name = 'test'")
                }
                #expect(try states(service)["key1"]?.markedBy == tokenID)
                // The upstream takes the key again (it was a passing fault): the probe brings it back in seconds.
                upstream.behave(.normal, for: bad)
                let marked = ContinuousClock.now
                #expect(try await eventually(timeout: .seconds(10)) { try states(service)["key1"]?.status == "active" })
                print("a key a request marked invalid: back \(ContinuousClock.now - marked) after the mark was seen")
                #expect(try states(service)["key1"]?.markedBy == nil)

                // Refused for good: the probe confirms it, and it waits for the normal 6 h interval.
                upstream.behave(.unauthorized, for: bad)
                #expect(
                    try await eventually {
                        _ = try await TestHTTP.chat(service, token: token)
                        return try states(service)["key1"]?.status == "invalid"
                    })
                #expect(try await eventually(timeout: .seconds(10)) { try states(service)["key1"]?.markedBy == nil })
                let (status, nextProbe) = try await DatabaseQueue(path: service.databasePath).read { db in
                    let row = try #require(
                        try Row.fetchOne(db, sql: "SELECT status, next_probe_at FROM keys WHERE name = 'key1'"))
                    return (row["status"] as String, row["next_probe_at"] as Int64)
                }
                #expect(status == "invalid")
                #expect(nextProbe > Int64(Date().timeIntervalSince1970 * 1000) + 5 * 3_600_000)
                #expect(upstream.count(key: bad, path: "/v1/models") >= 3, "added, first confirmation, second")
            }
        }

        @Test("a token whose every request gets a key-blaming 401 holds at most one key out, until a probe agrees")
        func oneKeyPerToken() async throws {
            try await ProxyService.serving(keys: values) { service, upstream, token in
                #expect(try await probed(service, keys: 3))
                // Every request is refused as if the key were wrong; the probes pass: the keys are fine.
                for value in values { upstream.behave(.refusedQuotingKey(probesPass: true), for: value) }
                var statuses: [Int] = []
                for _ in 0..<10 { statuses.append(try await TestHTTP.chat(service, token: token).status) }
                // With at most one key marked, some key is always left: every answer is the upstream's 401.
                #expect(statuses.allSatisfy { $0 == 401 }, "\(statuses)")
                // The whole history, replayed from key_events: never two keys out of rotation at once.
                let history = {
                    try DatabaseQueue(path: service.databasePath).read { db in
                        try Row.fetchAll(db, sql: "SELECT key_id, to_status FROM key_events ORDER BY id")
                            .map { (key: $0["key_id"] as Int64, to: $0["to_status"] as String) }
                    }
                }
                #expect(try await eventually { try history().contains { $0.to == "invalid" } })
                let events = try history()
                var out: Set<Int64> = []
                var mostOut = 0
                for event in events {
                    if event.to == "active" { out.remove(event.key) } else { out.insert(event.key) }
                    mostOut = max(mostOut, out.count)
                }
                #expect(mostOut == 1, "\(events)")
                // The probes disagree: every key returns.
                #expect(try await eventually { try outOfRotation(service) == 0 })
            }
        }

        @Test("no fragment of a pool key, no set-cookie or account header in any answer, errors and streams alike")
        func nothingIdentifying() async throws {
            let keys = Array(values.prefix(2))
            try await ProxyService.serving(keys: keys, workers: 1) { service, upstream, token in
                upstream.identifyingAccounts()
                #expect(try await probed(service, keys: 2))
                let stream = #"{"model":"gpt-test","stream":true,"messages":[]}"#
                var answers: [TestResponse] = []
                func both() async throws {
                    answers.append(try await TestHTTP.chat(service, token: token))
                    answers.append(
                        try await TestHTTP.send(
                            .POST, service.proxyURL + "/v1/chat/completions", token: token, json: stream))
                }
                try await both()
                for key in keys { upstream.behave(.rateLimited(retryAfter: "0"), for: key) }
                try await both()
                for key in keys { upstream.behave(.failing, for: key) }
                try await both()
                for key in keys { upstream.behave(.refusedQuotingKey(probesPass: true), for: key) }
                try await both()
                let statuses = answers.map(\.status)
                #expect(statuses == [200, 200, 429, 429, 500, 500, 401, 401], "\(statuses)")
                // The upstream did name them: the proxy took them out.
                let seen = upstream.requests.count
                #expect(seen > 8)
                for answer in answers {
                    var text = "\(answer.status)\n" + answer.body
                    for (name, value) in answer.headers { text += "\n\(name): \(value)" }
                    for name in ["set-cookie", "set-cookie2", "openai-organization", "openai-project"] {
                        #expect(answer.headers[name].isEmpty, "\(name) in \(text)")
                    }
                    for account in FakeUpstream.accountNames { #expect(!text.contains(account), "\(text)") }
                    for value in values {
                        let characters = Array(value)
                        for start in 0...(characters.count - 4) {
                            let fragment = String(characters[start..<(start + 4)])
                            #expect(!text.contains(fragment), "\(fragment) of a key in: \(text)")
                        }
                    }
                    if answer.status >= 400 {
                        #expect(answer.errorCode != nil, "still OpenAI's error JSON: \(answer.body)")
                    }
                }
                #expect(answers[6].body.contains("Incorrect API key provided: ***."))
            }
        }
    }
}
