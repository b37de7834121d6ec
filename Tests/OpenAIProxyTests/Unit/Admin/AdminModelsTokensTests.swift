import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Admin API: models and client tokens")
struct AdminModelsTokensTests {
    @Test("models: add, read, change, disable, enable, delete; duplicates and bad fields refused")
    func models() async throws {
        let harness = try AdminHarness()
        try await harness.run { client in
            let created = try await client.call(
                .post, "/api/models",
                json: #"{"model_name":"org/model-1","description":"first","capabilities":["chat","vision"]}"#)
            #expect(created.status == .created)
            #expect(created.object["capabilities"] as? [String] == ["chat", "vision"])
            #expect(created.object["source"] as? String == "manual")
            let read = try await client.call(.get, "/api/models/org%2Fmodel-1")
            #expect(read.status == .ok)
            #expect(read.object["description"] as? String == "first")
            let changed = try await client.call(
                .put, "/api/models/org%2Fmodel-1", json: #"{"description":"second","capabilities":[]}"#)
            #expect(changed.object["description"] as? String == "second")
            #expect(changed.object["capabilities"] as? [String] == [])
            #expect(
                try await client.call(.post, "/api/models/org%2Fmodel-1/disable").object["enabled"] as? Bool == false)
            let catalog = ModelCatalog.openAIList(try await harness.services.models.list())
            #expect(catalog == #"{"data":[],"object":"list"}"#, "a disabled model is not offered")
            #expect(try await client.call(.post, "/api/models/org%2Fmodel-1/enable").object["enabled"] as? Bool == true)
            let offered = ModelCatalog.openAIList(try await harness.services.models.list())
            #expect(offered.contains(#""id":"org/model-1","object":"model""#))
            #expect(offered.hasPrefix(#"{"data":[{"#))

            let duplicate = try await client.call(.post, "/api/models", json: #"{"model_name":"org/model-1"}"#)
            #expect(duplicate.status == .conflict)
            #expect(duplicate.errorCode == "duplicate_model")
            for (body, param) in [
                (#"{"model_name":""}"#, "model_name"), (#"{"model_name":"has space"}"#, "model_name"),
                (#"{"model_name":"m","capabilities":["Bad Tag"]}"#, "capabilities"),
                (#"{"model_name":"m","enabled":"yes"}"#, "enabled"),
                (#"{"model_name":"m","description":"\#(String(repeating: "d", count: 1001))"}"#, "description"),
            ] {
                let answer = try await client.call(.post, "/api/models", json: body)
                #expect(answer.status == .badRequest, "\(body)")
                #expect(answer.errorParam == param, "\(body): \(answer.text)")
            }
            #expect(try await client.call(.get, "/api/models?refresh=maybe").errorParam == "refresh")
            #expect(try await client.call(.get, "/api/models/none").status == .notFound)
            #expect(try await client.call(.put, "/api/models/none", json: "{}").status == .notFound)
            #expect(try await client.call(.post, "/api/models/none/enable").status == .notFound)
            #expect(try await client.call(.delete, "/api/models/org%2Fmodel-1").status == .ok)
            #expect(try await client.call(.delete, "/api/models/org%2Fmodel-1").status == .notFound)
            #expect(try await client.call(.get, "/api/models").array.isEmpty)
        }
    }

    @Test("models?refresh=true adds the upstream's models with an active key and keeps manual ones")
    func refresh() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        var configuration = ProxyConfiguration.defaults(cores: 2)
        configuration.upstreamBaseURL = UpstreamBaseURL(parsing: upstream.baseURL)!
        let harness = try AdminHarness(configuration: configuration)
        try await harness.run { client in
            let none = try await client.call(.get, "/api/models?refresh=true")
            #expect(none.status == .conflict)
            #expect(none.errorCode == "no_available_key")
            _ = try await harness.test.keys.add(name: "k", value: "sk-refresh-key-0123456789")
            _ = try await client.call(.post, "/api/models", json: #"{"model_name":"manual-model"}"#)
            let answer = try await client.call(.get, "/api/models?refresh=true")
            #expect(answer.status == .ok)
            let names = answer.array.compactMap { $0["model_name"] as? String }
            #expect(names == (FakeUpstream.defaultModels + ["manual-model"]).sorted())
            #expect(
                answer.array.first { $0["model_name"] as? String == "gpt-test" }?["source"] as? String == "upstream")
            #expect(
                answer.array.first { $0["model_name"] as? String == "manual-model" }?["source"] as? String == "manual")
            #expect(upstream.requests.last?.authorization == "Bearer sk-refresh-key-0123456789")
            #expect(!answer.text.contains("0123456789"))
        }
        var down = ProxyConfiguration.defaults(cores: 2)
        down.upstreamBaseURL = UpstreamBaseURL(parsing: "http://127.0.0.1:\(freePort())/v1")!
        let unreachable = try AdminHarness(configuration: down)
        _ = try await unreachable.test.keys.add(name: "k", value: "sk-refresh-key-0123456789")
        try await unreachable.run { client in
            let answer = try await client.call(.get, "/api/models?refresh=true")
            #expect(answer.status == .badGateway)
            #expect(answer.errorCode == "upstream_unreachable")
        }
    }

    @Test("POST /api/models/refresh refreshes for bearer and CSRF-carrying sessions; GET ?refresh=true is bearer only")
    func refreshByPost() async throws {
        let upstream = try await FakeUpstream.start()
        defer { upstream.stop() }
        var configuration = ProxyConfiguration.defaults(cores: 2)
        configuration.upstreamBaseURL = UpstreamBaseURL(parsing: upstream.baseURL)!
        let harness = try AdminHarness(configuration: configuration)
        _ = try await harness.test.keys.add(name: "k", value: "sk-refresh-key-0123456789")
        let session = try await harness.services.sessions.create(
            client: "t", now: harness.clock.now, lifetime: 3_600_000)
        try await harness.run { client in
            var cookie = AdminAuthTests.cookie(session.id)
            let viaGet = try await client.call(.get, "/api/models?refresh=true", headers: cookie)
            #expect(viaGet.status == .forbidden)
            #expect(viaGet.errorCode == "refresh_requires_post")
            let noCSRF = try await client.call(.post, "/api/models/refresh", headers: cookie)
            #expect(noCSRF.status == .forbidden)
            #expect(noCSRF.errorCode == "csrf_token_invalid")
            #expect(try await harness.services.models.list().isEmpty, "refused refreshes changed nothing")
            #expect(upstream.requests.isEmpty, "refused refreshes asked the upstream nothing")

            cookie[AdminAuthMiddleware.csrfHeader] = session.csrfToken
            let refreshed = try await client.call(.post, "/api/models/refresh", headers: cookie)
            #expect(refreshed.status == .ok)
            #expect(refreshed.array.compactMap { $0["model_name"] as? String } == FakeUpstream.defaultModels.sorted())
            let bearer = try await client.call(.post, "/api/models/refresh")
            #expect(bearer.status == .ok)
            let audit = try await client.call(.get, "/api/audit?action=model.refresh")
            let actors = (audit.object["data"] as? [[String: Any]] ?? []).compactMap { $0["actor"] as? String }
            #expect(actors.sorted() == ["admin-token", "session:\(SecretDigest.sha256Hex(session.id).prefix(8))"])
        }
    }

    @Test("tokens: the value is answered once; limits are set, cleared and validated; revoke is final")
    func tokens() async throws {
        let harness = try AdminHarness()
        _ = try await harness.services.models.create(ModelEntry(name: "gpt-test"), audit: nil)
        _ = try await harness.test.tokens.replaceInternal(value: "sk-proxy-internal-console-token")
        try await harness.run { client in
            let created = try await client.call(
                .post, "/api/tokens",
                json:
                    #"{"name":"ci","allowed_models":["gpt-test"],"rpm_limit":60,"token_quota":1000,"expires_at":"2031-01-01T00:00:00Z"}"#
            )
            #expect(created.status == .created)
            let value = try #require(created.object["token"] as? String)
            #expect(value.hasPrefix("sk-proxy-"))
            #expect(created.object["rpm_limit"] as? Int == 60)
            #expect(created.object["expires_at"] as? String == "2031-01-01T00:00:00.000Z")
            let id = try #require(created.object["id"] as? Int)

            let list = try await client.call(.get, "/api/tokens")
            #expect(list.array.count == 1, "the internal console token is not listed")
            #expect(!list.text.contains(value))
            #expect(list.array[0]["token"] is NSNull)
            let stored = try #require(try await harness.test.tokens.managed(id: Int64(id)))
            #expect(
                stored.limits
                    == ClientTokenLimits(
                        allowedModels: ["gpt-test"], rpmLimit: 60, tokenQuota: 1000, expiresAt: 1_924_992_000_000))

            let cleared = try await client.call(
                .put, "/api/tokens/\(id)", json: #"{"rpm_limit":null,"allowed_models":null,"name":"ci-2"}"#)
            #expect(cleared.status == .ok)
            #expect(cleared.object["rpm_limit"] is NSNull)
            #expect(cleared.object["allowed_models"] is NSNull)
            #expect(cleared.object["token_quota"] as? Int == 1000, "fields left out are kept")
            #expect(cleared.object["name"] as? String == "ci-2")

            for (body, param) in [
                (#"{"allowed_models":["unknown-model"]}"#, "allowed_models"),
                (#"{"allowed_models":[]}"#, "allowed_models"), (#"{"rpm_limit":0}"#, "rpm_limit"),
                (#"{"rpm_limit":"ten"}"#, "rpm_limit"), (#"{"token_quota":-1}"#, "token_quota"),
                (#"{"expires_at":"yesterday"}"#, "expires_at"),
                (#"{"expires_at":"2020-01-01T00:00:00Z"}"#, "expires_at"),
                (#"{"name":null}"#, "name"), (#"{"name":""}"#, "name"),
            ] {
                let answer = try await client.call(.put, "/api/tokens/\(id)", json: body)
                #expect(answer.status == .badRequest, "\(body)")
                #expect(answer.errorParam == param, "\(body): \(answer.text)")
            }
            #expect(try await client.call(.post, "/api/tokens", json: #"{"rpm_limit":5}"#).errorParam == "name")

            let internalID = try await harness.test.database.pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT id FROM client_tokens WHERE internal = 1")!
            }
            #expect(try await client.call(.delete, "/api/tokens/\(internalID)").status == .notFound)
            #expect(try await client.call(.get, "/api/tokens/\(internalID)").status == .notFound)
            #expect(try await client.call(.delete, "/api/tokens/\(id)").object["result"] as? String == "revoked")
            #expect(try await client.call(.get, "/api/tokens/\(id)").object["status"] as? String == "revoked")
            #expect(try await client.call(.delete, "/api/tokens/999").status == .notFound)
            #expect(try await client.call(.put, "/api/tokens/999", json: "{}").status == .notFound)
        }
    }
}
