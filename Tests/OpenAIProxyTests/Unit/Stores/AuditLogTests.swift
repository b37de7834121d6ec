import Testing

@testable import Shared

/// `AuditLogging` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Audit log")
struct AuditLogTests {
    @Test(
        "entries read back whole, newest first, paged, filtered by action, with the matching total",
        arguments: StoreEngine.tested)
    func pages(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            for index in 1...5 {
                try await stores.audit.record(
                    AuditEntry(
                        actor: "admin-token", client: "127.0.0.1", action: index % 2 == 0 ? "key.update" : "key.create",
                        target: index == 5 ? nil : "key:\(index)", detail: index == 1 ? "{\"name\":\"a\"}" : nil,
                        now: 1_000 + Int64(index)))
            }
            let all = try await stores.audit.page(limit: 10, offset: 0, action: nil)
            #expect(all.total == 5)
            #expect(all.entries.map(\.timestamp) == [1_005, 1_004, 1_003, 1_002, 1_001])
            #expect(all.entries.first?.target == nil && all.entries.last?.target == "key:1")
            #expect(all.entries.last?.detail == "{\"name\":\"a\"}" && all.entries.first?.detail == nil)
            #expect(all.entries.allSatisfy { $0.actor == "admin-token" && $0.client == "127.0.0.1" && $0.id != nil })
            #expect(Set(all.entries.compactMap(\.id)).count == 5)
            let second = try await stores.audit.page(limit: 2, offset: 2, action: nil)
            #expect(second.total == 5 && second.entries.map(\.timestamp) == [1_003, 1_002])
            let updates = try await stores.audit.page(limit: 1, offset: 0, action: "key.update")
            #expect(updates.total == 2 && updates.entries.map(\.timestamp) == [1_004])
            let none = try await stores.audit.page(limit: 10, offset: 0, action: "token.create")
            #expect(none.total == 0 && none.entries.isEmpty)
            #expect(
                try await stores.auditActions() == [
                    "key.create", "key.update", "key.create", "key.update", "key.create",
                ])
        }
    }
}
