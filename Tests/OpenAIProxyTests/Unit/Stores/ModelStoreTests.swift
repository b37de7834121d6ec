import Foundation
import Testing

@testable import Shared

/// `ModelStoring` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Model store")
struct ModelStoreTests {
    /// A time both engines store exactly (whole milliseconds).
    private static let added = Date(timeIntervalSince1970: 1_700_000_000.125)

    private static func audit(_ action: String) -> AuditEntry {
        AuditEntry(actor: "test", client: "127.0.0.1", action: action, target: nil, detail: nil, now: 1)
    }

    private static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    @Test("create stores every field; get and list read them back, list in byte order", arguments: StoreEngine.tested)
    func createAndRead(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let model = ModelEntry(
                name: "gpt-4o", description: "flagship", capabilities: ["chat", "vision"], enabled: false,
                source: "manual", now: Self.added)
            try await stores.models.create(model, audit: Self.audit("model.create"))
            for name in ["b-model", "_under", "Zeta", "a-model"] {
                try await stores.models.create(ModelEntry(name: name, now: Self.added), audit: nil)
            }
            let read = try #require(try await stores.models.get("gpt-4o"))
            #expect(read.name == "gpt-4o")
            #expect(read.description == "flagship")
            #expect(read.capabilityList == ["chat", "vision"])
            #expect(read.enabled == false)
            #expect(read.source == "manual")
            #expect(Self.milliseconds(read.createdAt) == Self.milliseconds(Self.added))
            #expect(Self.milliseconds(read.updatedAt) == Self.milliseconds(Self.added))
            #expect(try await stores.models.get("missing") == nil)
            // SQLite's BINARY collation: upper case before `_` before lower case, whatever the server's locale.
            #expect(try await stores.models.list().map(\.name) == ["Zeta", "_under", "a-model", "b-model", "gpt-4o"])
            #expect(try await stores.auditActions() == ["model.create"])
        }
    }

    @Test("a duplicate name is refused, and neither it nor its audit entry is stored", arguments: StoreEngine.tested)
    func duplicate(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.models.create(ModelEntry(name: "m", description: "first", now: Self.added), audit: nil)
            await #expect(throws: ModelStore.ChangeError.duplicate) {
                try await stores.models.create(
                    ModelEntry(name: "m", description: "second"), audit: Self.audit("model.create"))
            }
            #expect(try await stores.models.get("m")?.description == "first")
            #expect(try await stores.auditActions() == [])
        }
    }

    @Test(
        "update changes fields, stamps updated_at and records its audit entry; nil for an unknown name",
        arguments: StoreEngine.tested)
    func update(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.models.create(ModelEntry(name: "m", now: Self.added), audit: nil)
            let before = Date()
            let changed = try #require(
                try await stores.models.update("m", audit: Self.audit("model.update")) { model in
                    model.description = "changed"
                    model.enabled = false
                })
            #expect(changed.description == "changed" && changed.enabled == false)
            let read = try #require(try await stores.models.get("m"))
            #expect(read.description == "changed" && read.enabled == false)
            #expect(Self.milliseconds(read.createdAt) == Self.milliseconds(Self.added))
            #expect(Self.milliseconds(read.updatedAt) >= Self.milliseconds(before) - 1)
            #expect(try await stores.models.update("missing", audit: Self.audit("model.update")) { _ in } == nil)
            #expect(try await stores.auditActions() == ["model.update"])
        }
    }

    @Test("remove deletes once with its audit entry; false for an unknown name", arguments: StoreEngine.tested)
    func remove(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.models.create(ModelEntry(name: "m"), audit: nil)
            #expect(try await stores.models.remove("m", audit: Self.audit("model.delete")))
            #expect(try await stores.models.get("m") == nil)
            #expect(try await stores.models.remove("m", audit: Self.audit("model.delete")) == false)
            #expect(try await stores.auditActions() == ["model.delete"])
        }
    }

    @Test(
        "merging the upstream's ids adds only new ones as source upstream; manual models stay as they are",
        arguments: StoreEngine.tested)
    func mergeUpstream(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.models.create(
                ModelEntry(name: "gpt-4o", description: "mine", enabled: false, now: Self.added), audit: nil)
            let added = try await stores.models.mergeUpstream(
                ["gpt-4o", "o3", "gpt-4o-mini", "o3"], audit: Self.audit("model.refresh"))
            #expect(added == 2)
            let models = try await stores.models.list()
            #expect(models.map(\.name) == ["gpt-4o", "gpt-4o-mini", "o3"])
            #expect(models.map(\.source) == ["manual", "upstream", "upstream"])
            #expect(models.map(\.enabled) == [false, true, true])
            #expect(models.map(\.description) == ["mine", "", ""])
            #expect(try await stores.models.mergeUpstream(["o3"], audit: nil) == 0)
            #expect(try await stores.auditActions() == ["model.refresh"])
        }
    }

    @Test("unknown names the models not stored, in the order asked", arguments: StoreEngine.tested)
    func unknown(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.models.create(ModelEntry(name: "known"), audit: nil)
            #expect(try await stores.models.unknown(["x", "known", "y"]) == ["x", "y"])
            #expect(try await stores.models.unknown([]) == [])
        }
    }

    @Test(
        "adding, changing and removing a model moves the pool generation workers reload on",
        arguments: StoreEngine.tested)
    func generation(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let start = try await stores.generation()
            try await stores.models.create(ModelEntry(name: "m"), audit: nil)
            let created = try await stores.generation()
            #expect(created > start)
            _ = try await stores.models.update("m", audit: nil) { $0.enabled = false }
            let disabled = try await stores.generation()
            #expect(disabled > created)
            _ = try await stores.models.remove("m", audit: nil)
            #expect(try await stores.generation() > disabled)
        }
    }
}
