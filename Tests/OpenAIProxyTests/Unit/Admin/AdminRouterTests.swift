import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Admin API router")
struct AdminRouterTests {
    private let adminToken = "admin-token-0123456789"

    @Test("health is open; /api needs the admin token; keys are listed masked")
    func keysBehindToken() async throws {
        let test = try TestDatabase()
        _ = try await test.keys.add(name: "primary", value: "sk-admin-route-ABCDEFGH-1234")
        let app = Application(router: AdminServer.buildRouter(keys: test.keys, adminToken: adminToken))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            for header: String? in [
                nil, "Bearer wrong-token-0123456789", "Basic \(adminToken)", "Bearer \(adminToken)x",
            ] {
                var headers = HTTPFields()
                if let header { headers[.authorization] = header }
                try await client.execute(uri: "/api/keys", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized)
                    let body = String(buffer: response.body)
                    #expect(body.contains("\"code\":\"invalid_admin_token\""))
                    #expect(!body.contains("sk-admin"))
                }
            }
            try await client.execute(uri: "/api/keys", method: .get, headers: [.authorization: "Bearer \(adminToken)"])
            {
                response in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                let keys = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]])
                #expect(keys.count == 1)
                #expect(keys[0]["name"] as? String == "primary")
                #expect(keys[0]["key_value"] as? String == "sk-…1234")
                #expect(keys[0]["status"] as? String == "active")
                #expect(!body.contains("ABCDEFGH"))
            }
            try await client.execute(
                uri: "/api/nothing", method: .get, headers: [.authorization: "Bearer \(adminToken)"]
            ) {
                response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("\"type\":\"invalid_request_error\""))
            }
        }
    }
}
