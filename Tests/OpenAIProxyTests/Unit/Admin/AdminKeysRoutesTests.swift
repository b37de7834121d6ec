import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Admin API: keys")
struct AdminKeysRoutesTests {
    @Test("add, read, rename, disable, enable, delete a key; its state and rate-limit figures are shown")
    func lifecycle() async throws {
        let harness = try AdminHarness()
        try await harness.run { client in
            let created = try await client.call(
                .post, "/api/keys",
                json: #"{"name":"main","key_value":"sk-route-life-ABCDEFGH-9876","status":"disabled"}"#)
            #expect(created.status == .created)
            #expect(created.object["key_value"] as? String == "sk-…9876")
            #expect(created.object["status"] as? String == "disabled")
            #expect(!created.text.contains("ABCDEFGH"))
            let id = try #require(created.object["id"] as? Int)

            try await harness.test.database.pool.write { db in
                try db.execute(
                    sql: """
                        UPDATE keys SET status = 'cooling', status_reason = 'rate limited', status_code = 429,
                        next_probe_at = 1800000060000, rl_remaining_requests = 7, rl_remaining_tokens = 900,
                        models = '["gpt-test"]' WHERE id = ?
                        """, arguments: [id])
            }
            let read = try await client.call(.get, "/api/keys/\(id)")
            #expect(read.object["status"] as? String == "cooling")
            #expect(read.object["status_reason"] as? String == "rate limited")
            #expect(read.object["status_code"] as? Int == 429)
            #expect(read.object["next_probe_at"] as? String == "2027-01-15T08:01:00.000Z")
            let rateLimit = try #require(read.object["rate_limit"] as? [String: Any])
            #expect(rateLimit["remaining_requests"] as? Int == 7)
            #expect(rateLimit["remaining_tokens"] as? Int == 900)
            #expect(read.object["models"] as? [String] == ["gpt-test"])

            let renamed = try await client.call(.put, "/api/keys/\(id)", json: #"{"name":"renamed","status":"active"}"#)
            #expect(renamed.status == .ok)
            #expect(renamed.object["name"] as? String == "renamed")
            #expect(renamed.object["status"] as? String == "active")
            #expect(renamed.object["status_reason"] as? String == "set by operator")
            #expect(renamed.object["next_probe_at"] is NSNull)
            let events = try await harness.test.database.pool.read { db in
                try String.fetchAll(db, sql: "SELECT to_status FROM key_events WHERE key_id = ?", arguments: [id])
            }
            #expect(events == ["active"])

            let deleted = try await client.call(.delete, "/api/keys/\(id)")
            #expect(deleted.status == .ok)
            #expect(deleted.object["result"] as? String == "deleted")
            #expect(try await client.call(.get, "/api/keys/\(id)").status == .notFound)
            #expect(try await client.call(.delete, "/api/keys/\(id)").status == .notFound)
            #expect(try await client.call(.put, "/api/keys/\(id)", json: #"{"name":"x"}"#).status == .notFound)

            let audit = try await client.call(.get, "/api/audit")
            let actions = (audit.object["data"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            #expect(actions == ["key.delete", "key.update", "key.create"])
            #expect(audit.text.contains("sk-…9876"))
            #expect(!audit.text.contains("ABCDEFGH"))
        }
    }

    @Test("import answers added / duplicate / rejected counts")
    func importKeys() async throws {
        let harness = try AdminHarness()
        _ = try await harness.test.keys.add(name: "old", value: "sk-existing-000000001")
        try await harness.run { client in
            let answer = try await client.call(
                .post, "/api/keys/import",
                json:
                    #"{"keys":["sk-new-00000000000001","sk-new-00000000000002","sk-new-00000000000001","sk-existing-000000001","not a key","tiny",""]}"#
            )
            #expect(answer.status == .ok)
            #expect(answer.object["added"] as? Int == 2)
            #expect(answer.object["duplicate"] as? Int == 2)
            #expect(answer.object["rejected"] as? Int == 3)
            #expect(answer.object["rejected_items"] as? [Int] == [5, 6, 7])
            #expect(try await harness.test.keys.list().count == 3)
            let none = try await client.call(.post, "/api/keys/import", json: #"{"keys":[]}"#)
            #expect(none.status == .badRequest)
            #expect(none.errorParam == "keys")
        }
    }

    @Test("bad input on every field and parameter is a 400 naming it; duplicates 409; big bodies 413")
    func badInput() async throws {
        let harness = try AdminHarness()
        _ = try await harness.test.keys.add(name: "taken", value: "sk-taken-0123456789")
        try await harness.run { client in
            let cases: [(String, String, String, String?)] = [
                ("POST", "/api/keys", #"{"name":"","key_value":"sk-valid-0123456789"}"#, "name"),
                ("POST", "/api/keys", #"{"name":"   ","key_value":"sk-valid-0123456789"}"#, "name"),
                ("POST", "/api/keys", #"{"name":"n","key_value":"sk bad key 123"}"#, "key_value"),
                ("POST", "/api/keys", #"{"name":"n","key_value":"short"}"#, "key_value"),
                ("POST", "/api/keys", #"{"name":"n","key_value":"sk-valid-0123456789","status":"cooling"}"#, "status"),
                ("POST", "/api/keys", #"{"key_value":"sk-valid-0123456789"}"#, "name"),
                ("POST", "/api/keys", #"{"name":5,"key_value":"sk-valid-0123456789"}"#, "name"),
                ("POST", "/api/keys", #"[1,2]"#, nil),
                ("POST", "/api/keys", #"{"name":"#, nil),
                ("POST", "/api/keys", "", nil),
                ("PUT", "/api/keys/1", #"{"status":"invalid"}"#, "status"),
                ("PUT", "/api/keys/1", #"{"name":""}"#, "name"),
                ("PUT", "/api/keys/abc", #"{"name":"x"}"#, "id"),
                ("GET", "/api/keys/0", "", "id"),
                ("DELETE", "/api/keys/-4", "", "id"),
                ("POST", "/api/keys/import", #"{"keys":"sk-one"}"#, "keys"),
                ("POST", "/api/keys/import", #"{"keys":["sk-valid-0123456789"],"name_prefix":""}"#, "name"),
            ]
            for (method, uri, body, param) in cases {
                let answer = try await client.call(
                    HTTPRequest.Method(method)!, uri, json: body.isEmpty && method != "POST" ? nil : body)
                #expect(answer.status == .badRequest, "\(method) \(uri) \(body)")
                #expect(answer.errorParam == param, "\(method) \(uri) \(body): \(answer.text)")
                #expect(answer.object["error"] != nil)
            }
            let duplicate = try await client.call(
                .post, "/api/keys", json: #"{"name":"again","key_value":"sk-taken-0123456789"}"#)
            #expect(duplicate.status == .conflict)
            #expect(duplicate.errorCode == "duplicate_key")
            #expect(duplicate.errorParam == "key_value")
            #expect(!duplicate.text.contains("0123456789"))

            let invalidUTF8 = try await client.call(
                .post, "/api/keys", headers: AdminHarness.bearer,
                body: ByteBuffer(bytes: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D]))
            #expect(invalidUTF8.status == .badRequest)
            #expect(invalidUTF8.errorMessage == "The body is not valid UTF-8.")

            let huge = "{\"keys\":[\"" + String(repeating: "a", count: 1 << 20) + "\"]}"
            let tooLarge = try await client.call(.post, "/api/keys/import", json: huge)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.errorCode == "request_too_large")
        }
    }
}
