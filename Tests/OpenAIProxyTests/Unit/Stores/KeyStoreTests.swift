import Foundation
import Testing

@testable import Shared

/// `KeyStoring` on every engine, and the `keys` triggers under it: one suite, so SQLite and PostgreSQL cannot
/// drift.
@Suite("Key store")
struct KeyStoreTests {
    private static func audit(_ action: String) -> AuditEntry {
        AuditEntry(actor: "test", client: "127.0.0.1", action: action, target: nil, detail: nil, now: 1)
    }

    @Test(
        "add seals the value, keeps a hint and a fingerprint; the same value again is a duplicate",
        arguments: StoreEngine.tested)
    func add(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            guard
                case .added(let key) = try await stores.keys.add(
                    name: " a ", value: "sk-add-000000000001", status: .active)
            else {
                Issue.record("not added")
                return
            }
            let id = try #require(key.id)
            let read = try #require(try await stores.keys.key(id: id))
            #expect(read.name == "a" && read.status == .active)
            #expect(!read.sealedValue.contains("sk-add-000000000001"))
            #expect(try stores.box.open(read.sealedValue) == "sk-add-000000000001")
            #expect(read.fingerprint == SecretDigest.sha256Hex("sk-add-000000000001"))
            #expect(read.hint == SecretDigest.hint("sk-add-000000000001"))
            #expect(read.statusSince == key.statusSince && read.consecutiveFailures == 0 && read.models == nil)
            let again = try await stores.keys.add(name: "b", value: "sk-add-000000000001", status: .disabled)
            #expect(again == .duplicate(existingID: id))
            guard
                case .added(let disabled) = try await stores.keys.add(
                    name: "c", value: "sk-add-000000000002", status: .disabled)
            else {
                Issue.record("not added")
                return
            }
            #expect(try await stores.keys.list().map(\.id) == [id, disabled.id])
            #expect(try await stores.keys.list().map(\.status) == [.active, .disabled])
            await #expect(throws: InputError(field: "key_value", message: "must be 8 to 512 characters")) {
                try await stores.keys.add(name: "d", value: "x", status: .active)
            }
            #expect(try await stores.keys.key(id: id + 100) == nil)
        }
    }

    @Test(
        "import counts added, duplicate and rejected lines; keys already stored count as duplicates",
        arguments: StoreEngine.tested)
    func importKeys(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let text = "sk-import-0000000001\nsk-import-0000000002\nsk-import-0000000001\n\n# note\nbad key\n"
            let first = try await stores.keys.importKeys(text, namePrefix: "imported")
            #expect(first.added == 2 && first.duplicates == 1 && first.rejected == [6])
            let again = try await stores.keys.importKeys(
                "sk-import-0000000002\nsk-import-0000000003\n", namePrefix: "more")
            #expect(again.added == 1 && again.duplicates == 1 && again.rejected == [])
            #expect(try await stores.keys.list().map(\.name) == ["imported-1", "imported-2", "more-2"])
        }
    }

    @Test(
        "an operator's status clears the health state and writes a key event only when it changes",
        arguments: StoreEngine.tested)
    func setStatus(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            guard
                case .added(let key) = try await stores.keys.add(
                    name: "k", value: "sk-status-0000000001", status: .active),
                let id = key.id
            else {
                Issue.record("not added")
                return
            }
            try await stores.execute(
                "UPDATE keys SET status = 'cooling', consecutive_failures = 3, cooling_level = 2, next_probe_at = 99, status_code = 503 WHERE id = \(id)"
            )
            #expect(try await stores.keys.setStatus(id: id, .active, reason: nil))
            let read = try #require(try await stores.keys.key(id: id))
            #expect(read.status == .active && read.consecutiveFailures == 0 && read.coolingLevel == 0)
            #expect(read.nextProbeAt == nil && read.statusCode == nil && read.statusReason == nil)
            #expect(try await stores.keys.setStatus(id: id, .active, reason: "again"))
            #expect(try await stores.keys.setStatus(id: id, .disabled, reason: "maintenance"))
            #expect(try await stores.keys.setStatus(id: id + 100, .disabled, reason: nil) == false)
            #expect(
                try await stores.keyEvents() == [
                    KeyEvent(key: id, from: "cooling", to: "active", reason: "set by an operator"),
                    KeyEvent(key: id, from: "active", to: "disabled", reason: "maintenance"),
                ])
        }
    }

    @Test(
        "update renames and sets a status with its key event and audit entry; remove deletes with its audit entry",
        arguments: StoreEngine.tested)
    func updateAndRemove(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            guard
                case .added(let key) = try await stores.keys.add(
                    name: "k", value: "sk-update-0000000001", status: .active),
                let id = key.id
            else {
                Issue.record("not added")
                return
            }
            let renamed = try await stores.keys.update(
                id: id, name: "renamed", status: nil, audit: Self.audit("key.update"))
            #expect(renamed?.name == "renamed" && renamed?.status == .active)
            let disabled = try await stores.keys.update(
                id: id, name: nil, status: .disabled, audit: Self.audit("key.update"))
            #expect(disabled?.status == .disabled && disabled?.statusReason == "set by operator")
            let read = try #require(try await stores.keys.key(id: id))
            #expect(read.name == "renamed" && read.status == .disabled && read.statusReason == "set by operator")
            #expect(
                try await stores.keyEvents() == [
                    KeyEvent(key: id, from: "active", to: "disabled", reason: "set by operator")
                ])
            #expect(
                try await stores.keys.update(id: id + 100, name: "x", status: nil, audit: Self.audit("key.update"))
                    == nil)
            #expect(try await stores.keys.remove(id: id, audit: Self.audit("key.delete")))
            #expect(try await stores.keys.remove(id: id, audit: Self.audit("key.delete")) == false)
            #expect(try await stores.keys.list().isEmpty)
            #expect(try await stores.auditActions() == ["key.update", "key.update", "key.delete"])
        }
    }

    @Test(
        "triggers: a key entering rotation starts level with the least used active key; leaving invalid drops the mark",
        arguments: StoreEngine.tested)
    func triggers(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            func add(_ value: String) async throws -> Int64 {
                guard case .added(let key) = try await stores.keys.add(name: "k", value: value, status: .active),
                    let id = key.id
                else { throw InputError(field: "key", message: "not added") }
                return id
            }
            let first = try await add("sk-level-0000000001")
            let second = try await add("sk-level-0000000002")
            try await stores.execute("UPDATE keys SET pick_count = 7 WHERE id = \(first)")
            try await stores.execute("UPDATE keys SET pick_count = 5 WHERE id = \(second)")
            let third = try await add("sk-level-0000000003")
            #expect(try await stores.integer("SELECT pick_count FROM keys WHERE id = \(third)") == 5)
            #expect(try await stores.keys.setStatus(id: third, .disabled, reason: nil))
            try await stores.execute("UPDATE keys SET pick_count = 9 WHERE id <> \(third)")
            #expect(try await stores.keys.setStatus(id: third, .active, reason: nil))
            #expect(try await stores.integer("SELECT pick_count FROM keys WHERE id = \(third)") == 9)

            try await stores.execute("UPDATE keys SET status = 'invalid', marked_by_token = 4 WHERE id = \(first)")
            #expect(try await stores.integer("SELECT marked_by_token FROM keys WHERE id = \(first)") == 4)
            let before = try await stores.generation()
            #expect(try await stores.keys.setStatus(id: first, .active, reason: nil))
            #expect(try await stores.integer("SELECT marked_by_token FROM keys WHERE id = \(first)") == nil)
            #expect(try await stores.generation() > before)
        }
    }
}
