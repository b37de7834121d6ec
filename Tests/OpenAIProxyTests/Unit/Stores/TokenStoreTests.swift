import Foundation
import Testing

@testable import Shared

/// `TokenStoring` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Token store")
struct TokenStoreTests {
    private static func audit(_ action: String) -> AuditEntry {
        AuditEntry(actor: "test", client: "127.0.0.1", action: action, target: nil, detail: nil, now: 1)
    }

    private static let limits = ClientTokenLimits(
        allowedModels: ["gpt-4o", "o3"], rpmLimit: 20, tokenQuota: 1_000_000_000_000, expiresAt: 1_900_000_000_000)

    @Test("create answers the value once and stores only its hash, with every limit", arguments: StoreEngine.tested)
    func create(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (token, value) = try await stores.tokens.create(
                name: " ci ", limits: Self.limits, audit: Self.audit("token.create"))
            #expect(value.hasPrefix(ClientToken.valuePrefix))
            let id = try #require(token.id)
            let read = try #require(try await stores.tokens.managed(id: id))
            #expect(read.name == "ci")
            #expect(read.tokenHash == SecretDigest.sha256Hex(value))
            #expect(read.hint == SecretDigest.hint(value) && !read.hint.contains(value))
            #expect(read.status == .active && read.revokedAt == nil && read.lastUsed == nil)
            #expect(read.limits == Self.limits)
            #expect(read.isInternal == false)
            #expect(read.requestCount == 0 && read.promptTokens == 0 && read.completionTokens == 0)
            let (second, _) = try await stores.tokens.create(name: "other", limits: ClientTokenLimits(), audit: nil)
            #expect(try #require(second.id) > id)
            #expect(try await stores.tokens.managed(id: second.id!)?.limits == ClientTokenLimits())
            #expect(try await stores.auditActions() == ["token.create"])
            await #expect(throws: InputError.self) {
                try await stores.tokens.create(name: "  ", limits: ClientTokenLimits(), audit: nil)
            }
        }
    }

    @Test(
        "the internal token: one at a time, kept for the same value, never among the managed ones",
        arguments: StoreEngine.tested)
    func internalToken(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (managed, _) = try await stores.tokens.create(name: "team", limits: ClientTokenLimits(), audit: nil)
            let first = try await stores.tokens.replaceInternal(value: "sk-proxy-internal-one")
            #expect(try await stores.tokens.replaceInternal(value: "sk-proxy-internal-one") == first)
            let second = try await stores.tokens.replaceInternal(value: "sk-proxy-internal-two")
            #expect(second != first)
            let all = try await stores.tokens.list()
            #expect(all.map(\.id) == [managed.id, second])
            #expect(all.map(\.isInternal) == [false, true])
            #expect(all[1].tokenHash == SecretDigest.sha256Hex("sk-proxy-internal-two"))
            #expect(try await stores.tokens.listManaged().map(\.id) == [managed.id])
            #expect(try await stores.tokens.managed(id: second) == nil)
            #expect(try await stores.tokens.update(id: second, audit: nil) { $0.name = "x" } == nil)
            #expect(try await stores.tokens.revoke(id: second, audit: nil) == .notFound)
        }
    }

    @Test(
        "update sets and clears limits with its audit entry and moves the pool generation",
        arguments: StoreEngine.tested)
    func update(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (token, _) = try await stores.tokens.create(name: "t", limits: Self.limits, audit: nil)
            let id = try #require(token.id)
            let before = try await stores.generation()
            let changed = try await stores.tokens.update(id: id, audit: Self.audit("token.update")) { token in
                token.name = "renamed"
                token.apply(ClientTokenLimits(rpmLimit: 5))
            }
            #expect(changed?.name == "renamed")
            let read = try #require(try await stores.tokens.managed(id: id))
            #expect(read.name == "renamed")
            #expect(read.limits == ClientTokenLimits(rpmLimit: 5))
            #expect(try await stores.generation() > before)
            #expect(try await stores.tokens.update(id: id + 100, audit: Self.audit("token.update")) { _ in } == nil)
            #expect(try await stores.auditActions() == ["token.update"])
        }
    }

    @Test(
        "revoke: revoked once with its audit entry, then already revoked, unknown ids not found",
        arguments: StoreEngine.tested)
    func revoke(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (token, _) = try await stores.tokens.create(name: "t", limits: ClientTokenLimits(), audit: nil)
            let id = try #require(token.id)
            #expect(try await stores.tokens.revoke(id: id, audit: Self.audit("token.revoke")) == .revoked)
            let read = try #require(try await stores.tokens.managed(id: id))
            #expect(read.status == .revoked && read.revokedAt != nil)
            #expect(try await stores.tokens.revoke(id: id, audit: Self.audit("token.revoke")) == .alreadyRevoked)
            #expect(try await stores.tokens.revoke(id: id + 100, audit: Self.audit("token.revoke")) == .notFound)
            #expect(try await stores.auditActions() == ["token.revoke"])
        }
    }
}
