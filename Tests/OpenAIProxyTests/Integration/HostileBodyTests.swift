import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import Testing

extension RealService {
    /// Request bodies written to break the worker or slip past a token's allow-list, and answers too large
    /// to keep whole.
    @Suite("Hostile bodies", .serialized)
    struct HostileBodyTests {
        private func running(_ body: (ProxyService, FakeUpstream, String) async throws -> Void) async throws {
            try await ProxyService.serving(keys: ["sk-hostile-bodies-0001"], body)
        }

        private func chat(_ service: ProxyService, token: String, body: String) async throws -> TestResponse {
            try await TestHTTP.send(.POST, service.proxyURL + "/v1/chat/completions", token: token, json: body)
        }

        @Test("two million brackets → 400 json_too_deep every time, no worker dies, normal requests still served")
        func deepNesting() async throws {
            try await running { service, upstream, token in
                let workers = service.workerPIDs()
                #expect(workers.count == 2)
                let deep = #"{"x":"# + String(repeating: "[", count: 2_000_000)
                for _ in 0..<12 {
                    let answer = try await chat(service, token: token, body: deep)
                    #expect(answer.status == 400)
                    #expect(answer.errorCode == "json_too_deep")
                    #expect((answer.json["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
                }
                let malformed = try await chat(service, token: token, body: #"{"model":"gpt-test","messages":["#)
                #expect(malformed.status == 400 && malformed.errorCode == "invalid_json")
                #expect(service.workerPIDs() == workers)
                #expect(workers.allSatisfy(ProcessTable.isAlive))
                #expect(try await TestHTTP.chat(service, token: token).status == 200)
                #expect(upstream.traffic.count == 1, "nothing refused reached the upstream")
                let database = try DatabaseQueue(path: service.databasePath)
                #expect(
                    await eventually {
                        (try? await database.read { db in
                            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM usage_log WHERE error = 'json_too_deep'")
                        }) == 12
                    })
            }
        }

        @Test("an allow-list holds against escaped, repeated, multipart and unreadable models")
        func allowListBypass() async throws {
            try await running { service, upstream, token in
                let database = try service.writableDatabase()
                try await database.write { db in
                    try db.execute(sql: #"UPDATE client_tokens SET allowed_models = '["gpt-test"]'"#)
                }
                // Workers reload within 250 ms of the generation moving.
                #expect(
                    await eventually {
                        (try? await TestHTTP.chat(service, token: token, model: "gpt-4o").status) == 403
                    })
                // Requests made before the workers reloaded reached the upstream; only what follows counts.
                upstream.reset()

                let escaped = try await chat(service, token: token, body: #"{"model":"gpt\u002d4o","messages":[]}"#)
                #expect(escaped.status == 403 && escaped.errorCode == "model_not_allowed")
                let escapedName = try await chat(service, token: token, body: #"{"mod\u0065l":"gpt-4o","messages":[]}"#)
                #expect(escapedName.status == 403 && escapedName.errorCode == "model_not_allowed")
                let repeated = try await chat(
                    service, token: token, body: #"{"model":"gpt-test","messages":[],"model":"gpt-4o"}"#)
                #expect(repeated.status == 400 && repeated.errorCode == "duplicate_model")
                let notString = try await chat(service, token: token, body: #"{"model":["gpt-4o"],"messages":[]}"#)
                #expect(notString.status == 403 && notString.errorCode == "model_unreadable")

                func multipart(
                    _ model: String, contentType: String = "multipart/form-data; boundary=\"XyZ\""
                )
                    async throws -> TestResponse
                {
                    try await sendRaw(
                        service.proxyURL + "/v1/audio/transcriptions", token: token, contentType: contentType,
                        body: "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                            + "Content-Type: audio/wav\r\n\r\nRIFF\r\n--XyZ\r\n"
                            + "Content-Disposition: form-data; name=\"model\"\r\n\r\n\(model)\r\n--XyZ--\r\n")
                }
                let deniedAudio = try await multipart("whisper-1")
                #expect(deniedAudio.status == 403 && deniedAudio.errorCode == "model_not_allowed")
                let unreadableAudio = try await multipart("gpt-test", contentType: "multipart/form-data")
                #expect(unreadableAudio.status == 403 && unreadableAudio.errorCode == "model_unreadable")
                let other = try await sendRaw(
                    service.proxyURL + "/v1/chat/completions", token: token,
                    contentType: "application/x-www-form-urlencoded", body: "model=gpt-4o")
                #expect(other.status == 403 && other.errorCode == "model_unreadable")
                #expect(upstream.traffic.isEmpty, "no refused request reached the upstream")

                // What the allow-list permits still goes through, multipart included.
                #expect(try await multipart("gpt-test").status == 200)
                let allowed = try await chat(service, token: token, body: #"{"model":"gpt\u002dtest","messages":[]}"#)
                #expect(allowed.status == 200)
                let noModel = try await TestHTTP.send(
                    .POST, service.proxyURL + "/v1/chat/completions", token: token, json: "{}")
                #expect(noModel.status == 200, "a body without a model is not refused")
                #expect(upstream.traffic.map(\.path).contains("/v1/audio/transcriptions"))
            }
        }

        @Test("a JSON answer of 6 MiB with its usage at the end is counted")
        func largeAnswerUsage() async throws {
            try await running { service, _, token in
                let answer = try await chat(
                    service, token: token, body: #"{"model":"gpt-test","huge_answer":true,"messages":[]}"#)
                #expect(answer.status == 200)
                #expect(answer.body.utf8.count > 6 << 20)
                let database = try DatabaseQueue(path: service.databasePath)
                #expect(
                    await eventually {
                        (try? await database.read { db in
                            try Int.fetchOne(db, sql: "SELECT completion_tokens FROM usage_log WHERE status = 200")
                        }) == 6000
                    })
            }
        }
    }
}

/// Sends `body` with `contentType` as it is (`TestHTTP.send` writes JSON only).
private func sendRaw(_ url: String, token: String, contentType: String, body: String) async throws -> TestResponse {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.headers.add(name: "authorization", value: "Bearer \(token)")
    request.headers.add(name: "content-type", value: contentType)
    request.body = .bytes(ByteBuffer(string: body))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let answer = try await response.body.collect(upTo: 1 << 20)
    return TestResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: answer))
}
