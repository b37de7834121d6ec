import Foundation
import Testing

@testable import Shared

/// `SettingsStoring` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Settings store")
struct SettingsStoreTests {
    private static let configuration = ProxyConfiguration.defaults(cores: 2)

    private static func audit() -> AuditEntry {
        AuditEntry(actor: "test", client: "127.0.0.1", action: "settings.update", target: nil, detail: nil, now: 1)
    }

    @Test(
        "overrides are stored, replaced and removed in one transaction with the audit entry",
        arguments: StoreEngine.tested)
    func change(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            #expect(try await stores.settings.overrides() == [:])
            #expect(try await stores.settings.load(Self.configuration) == LiveSettings.defaults(Self.configuration))
            try await stores.settings.change(
                [(.rotationStrategy, "least_used"), (.maxBodyBytes, "4096")], now: 10, audit: Self.audit())
            try await stores.settings.change(
                [(.maxBodyBytes, "8192"), (.firstByteTimeoutSeconds, nil)], now: 11, audit: nil)
            #expect(
                try await stores.settings.overrides() == ["rotation_strategy": "least_used", "max_body_bytes": "8192"])
            let loaded = try await stores.settings.load(Self.configuration)
            #expect(loaded.rotationStrategy == .leastUsed)
            #expect(loaded.maxBodyBytes == 8192)
            #expect(loaded.overridden == [.rotationStrategy, .maxBodyBytes])
            try await stores.settings.change([(.rotationStrategy, nil)], now: 12, audit: nil)
            #expect(try await stores.settings.overrides() == ["max_body_bytes": "8192"])
            #expect(try await stores.auditActions() == ["settings.update"])
        }
    }

    @Test("a stored value that no longer parses falls back to the configuration's", arguments: StoreEngine.tested)
    func unparsable(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.settings.change(
                [(.maxBodyBytes, "lots"), (.upstreamConnectTimeoutSeconds, "7")], now: 1, audit: nil)
            let loaded = try await stores.settings.load(Self.configuration)
            #expect(loaded.maxBodyBytes == Self.configuration.maxBodyBytes)
            #expect(loaded.upstreamConnectTimeoutSeconds == 7)
            #expect(loaded.overridden == [.upstreamConnectTimeoutSeconds])
        }
    }

    @Test("every change moves the pool generation workers reload on", arguments: StoreEngine.tested)
    func generation(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let start = try await stores.generation()
            try await stores.settings.change([(.maxBodyBytes, "4096")], now: 1, audit: nil)
            let set = try await stores.generation()
            #expect(set > start)
            try await stores.settings.change([(.maxBodyBytes, "8192")], now: 2, audit: nil)
            let replaced = try await stores.generation()
            #expect(replaced > set)
            try await stores.settings.change([(.maxBodyBytes, nil)], now: 3, audit: nil)
            #expect(try await stores.generation() > replaced)
        }
    }
}
