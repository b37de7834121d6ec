import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AdminServer
@testable import Shared

@Suite("Admin API: objects")
struct AdminObjectsTests {
    /// Two keys (the second then removed), two tokens, and four records: the removed key's two, the kept key's two.
    private static func seed(_ harness: AdminHarness) async throws -> (kept: Int64, removed: Int64, tokens: [Int64]) {
        var keys: [Int64] = []
        for name in ["kept", "gone"] {
            guard
                case .added(let key) = try await harness.services.keys.add(
                    name: name, value: "sk-objadm-\(name)-0001", status: .active),
                let id = key.id
            else { throw CancellationError() }
            keys.append(id)
        }
        let alice =
            try await harness.services.tokens.create(name: "alice", limits: ClientTokenLimits(), audit: nil).token.id
            ?? 0
        let bob =
            try await harness.services.tokens.create(name: "bob", limits: ClientTokenLimits(), audit: nil).token.id ?? 0
        func object(_ id: String, _ kind: String, key: Int64, token: Int64, at: Int64) -> ObjectChange {
            .created(
                StoredObject(id: id, kind: kind, keyID: key, tokenID: token, createdAt: at, expiresAt: at + 1_000_000))
        }
        try await harness.services.objects.apply([
            object("file-old", "file", key: keys[1], token: alice, at: 1_000),
            object("batch_b", "batch", key: keys[1], token: bob, at: 2_000),
            object("file-kept", "file", key: keys[0], token: alice, at: 3_000),
            object("resp_r", "response", key: keys[0], token: alice, at: 4_000),
        ])
        #expect(try await harness.services.keys.remove(id: keys[1], audit: nil))
        return (keys[0], keys[1], [alice, bob])
    }

    private static func ids(_ answer: AdminAnswer) -> [String] {
        (answer.object["data"] as? [[String: Any]] ?? []).compactMap { $0["object_id"] as? String }
    }

    @Test("objects are listed newest first with key and token names, filtered and paged; counts per key and token")
    func list() async throws {
        let harness = try AdminHarness()
        let seeded = try await Self.seed(harness)
        try await harness.run { client in
            let all = try await client.call(.get, "/api/objects")
            #expect(all.status == .ok)
            #expect(Self.ids(all) == ["resp_r", "file-kept", "batch_b", "file-old"])
            #expect(all.object["total"] as? Int == 4)
            let rows = all.object["data"] as? [[String: Any]] ?? []
            let removed = try #require(rows.last)
            #expect(removed["key_id"] as? Int64 == seeded.removed)
            #expect(removed["key_name"] is NSNull && removed["key_removed"] as? Bool == true)
            #expect(removed["token_name"] as? String == "alice" && removed["kind"] as? String == "file")
            #expect(removed["created_at"] as? String == ISOTime.format(1_000))
            #expect(rows.first?["key_name"] as? String == "kept" && rows.first?["key_removed"] as? Bool == false)

            #expect(Self.ids(try await client.call(.get, "/api/objects?token_id=\(seeded.tokens[1])")) == ["batch_b"])
            #expect(
                Self.ids(try await client.call(.get, "/api/objects?key_id=\(seeded.kept)&kind=file")) == ["file-kept"])
            let page = try await client.call(.get, "/api/objects?limit=2&offset=1")
            #expect(Self.ids(page) == ["file-kept", "batch_b"] && page.object["total"] as? Int == 4)
            #expect(try await client.call(.get, "/api/objects?key_id=zero").errorParam == "key_id")
            #expect(try await client.call(.get, "/api/objects?limit=501").errorParam == "limit")

            let summary = try await client.call(.get, "/api/objects/summary")
            #expect(summary.object["total"] as? Int == 4)
            let keys = summary.object["keys"] as? [[String: Any]] ?? []
            #expect(keys.map { $0["key_id"] as? Int64 } == [seeded.kept, seeded.removed])
            #expect(keys.map { $0["count"] as? Int } == [2, 2])
            #expect(keys.map { $0["key_removed"] as? Bool } == [false, true])
            let tokens = summary.object["tokens"] as? [[String: Any]] ?? []
            #expect(tokens.map { $0["token_name"] as? String } == ["alice", "bob"])
            #expect(tokens.map { $0["count"] as? Int } == [3, 1])
        }
    }

    @Test("revoke one, reassign a removed key's records, revoke a key's records; refusals say why; each is audited")
    func changes() async throws {
        let harness = try AdminHarness()
        let seeded = try await Self.seed(harness)
        try await harness.run { client in
            let same = try await client.call(
                .post, "/api/objects/reassign",
                json: #"{"from_key_id":\#(seeded.removed),"to_key_id":\#(seeded.removed)}"#)
            #expect(same.status == .badRequest && same.errorParam == "to_key_id")
            let missing = try await client.call(
                .post, "/api/objects/reassign", json: #"{"from_key_id":\#(seeded.removed),"to_key_id":999}"#)
            #expect(missing.status == .notFound && missing.errorParam == "to_key_id")
            #expect(missing.errorMessage == "No key with id 999.")
            let noField = try await client.call(.post, "/api/objects/reassign", json: #"{"from_key_id":1}"#)
            #expect(noField.status == .badRequest && noField.errorParam == "to_key_id")
            #expect(try await harness.services.objects.generation().generation == 0, "nothing changed by a refusal")

            let moved = try await client.call(
                .post, "/api/objects/reassign",
                json: #"{"from_key_id":\#(seeded.removed),"to_key_id":\#(seeded.kept)}"#)
            #expect(moved.status == .ok && moved.object["moved"] as? Int == 2)
            #expect(try await harness.services.objects.object(id: "file-old")?.keyID == seeded.kept)
            #expect(Self.ids(try await client.call(.get, "/api/objects?key_id=\(seeded.removed)")).isEmpty)

            let revoked = try await client.call(.delete, "/api/objects/file-old")
            #expect(revoked.status == .ok && revoked.object["result"] as? String == "revoked")
            #expect(try await harness.services.objects.object(id: "file-old") == nil)
            let again = try await client.call(.delete, "/api/objects/file-old")
            #expect(again.status == .notFound && again.errorParam == "object_id")

            let dropped = try await client.call(.post, "/api/objects/revoke", json: #"{"key_id":\#(seeded.kept)}"#)
            #expect(dropped.status == .ok && dropped.object["revoked"] as? Int == 3)
            #expect(try await client.call(.get, "/api/objects").object["total"] as? Int == 0)
            #expect(try await harness.services.objects.generation().generation == 3)

            let audit = try await client.call(.get, "/api/audit")
            let entries = audit.object["data"] as? [[String: Any]] ?? []
            let actions = entries.compactMap { $0["action"] as? String }.filter { $0.hasPrefix("object.") }
            #expect(actions == ["object.revoke_key", "object.revoke", "object.reassign"])
            let targets = entries.filter { ($0["action"] as? String)?.hasPrefix("object.") == true }
                .compactMap { $0["target"] as? String }
            #expect(targets == ["key:\(seeded.kept)", "object:file-old", "key:\(seeded.removed)"])
        }
    }
}
