import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Admin API router")
struct AdminRouterTests {
    @Test("health is open; /api needs the admin token; keys are listed masked")
    func keysBehindToken() async throws {
        let harness = try AdminHarness()
        _ = try await harness.test.keys.add(name: "primary", value: "sk-admin-route-ABCDEFGH-1234")
        try await harness.run { client in
            #expect(try await client.call(.get, "/healthz", headers: [:]).status == .ok)
            for header: String? in [nil, "Bearer wrong-token-0123456789", "Basic \(AdminHarness.adminToken)"] {
                var headers = HTTPFields()
                if let header { headers[.authorization] = header }
                let answer = try await client.call(.get, "/api/keys", headers: headers)
                #expect(answer.status == .unauthorized)
                #expect(answer.errorCode == "invalid_admin_token")
                #expect(!answer.text.contains("sk-admin"))
            }
            let answer = try await client.call(.get, "/api/keys")
            #expect(answer.status == .ok)
            let keys = answer.array
            #expect(keys.count == 1)
            #expect(keys[0]["name"] as? String == "primary")
            #expect(keys[0]["key_value"] as? String == "sk-…1234")
            #expect(keys[0]["status"] as? String == "active")
            #expect(!answer.text.contains("ABCDEFGH"))
            let missing = try await client.call(.get, "/api/nothing")
            #expect(missing.status == .notFound)
            #expect(missing.text.contains("\"type\":\"invalid_request_error\""))
        }
    }

    @Test("the OpenAPI document describes exactly the routes the router registers")
    func openAPIMatchesRoutes() async throws {
        let harness = try AdminHarness()
        _ = AdminServer.buildRouter(harness.services)
        let registered = Set(harness.services.routes.all)
        let documented = Set(OpenAPIDocument.operations)
        #expect(registered.count == harness.services.routes.all.count, "a route is registered twice")
        #expect(registered.subtracting(documented).isEmpty, "undocumented: \(registered.subtracting(documented))")
        #expect(
            documented.subtracting(registered).isEmpty, "documented but absent: \(documented.subtracting(registered))")
        try await harness.run { client in
            let answer = try await client.call(.get, "/api/openapi.json", headers: [:])
            #expect(answer.status == .ok)
            #expect(answer.object["openapi"] as? String == "3.1.0")
            let paths = try #require(answer.object["paths"] as? [String: Any])
            #expect(paths["/api/keys/{id}"] != nil)
        }
    }
}
