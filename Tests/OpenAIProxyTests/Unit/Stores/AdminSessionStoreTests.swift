import Testing

@testable import Shared

/// `AdminSessionStoring` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Admin session store")
struct AdminSessionStoreTests {
    private static func session(_ hash: String, expiresAt: Int64) -> AdminSession {
        AdminSession(idHash: hash, csrfToken: "csrf-\(hash)", client: "10.0.0.1", createdAt: 100, expiresAt: expiresAt)
    }

    @Test(
        "a stored session reads back whole; deleting it, or an unknown hash, finds none", arguments: StoreEngine.tested)
    func roundTrip(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let stored = Self.session("aaaa", expiresAt: 1_000)
            try await stores.sessions.insert(stored, now: 100)
            #expect(try await stores.sessions.session(idHash: "aaaa") == stored)
            #expect(try await stores.sessions.session(idHash: "bbbb") == nil)
            try await stores.sessions.delete(idHash: "aaaa")
            #expect(try await stores.sessions.session(idHash: "aaaa") == nil)
            try await stores.sessions.delete(idHash: "aaaa")
        }
    }

    @Test(
        "starting a session deletes those expired by then, and only those; an expired one still reads back until then",
        arguments: StoreEngine.tested)
    func pruning(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            try await stores.sessions.insert(Self.session("old", expiresAt: 500), now: 100)
            try await stores.sessions.insert(Self.session("edge", expiresAt: 600), now: 100)
            try await stores.sessions.insert(Self.session("live", expiresAt: 601), now: 100)
            // Past its expiry, not yet pruned: the caller decides what an expired session means.
            #expect(try await stores.sessions.session(idHash: "old")?.expiresAt == 500)
            try await stores.sessions.insert(Self.session("new", expiresAt: 2_000), now: 600)
            #expect(try await stores.sessions.session(idHash: "old") == nil)
            #expect(try await stores.sessions.session(idHash: "edge") == nil)
            #expect(try await stores.sessions.session(idHash: "live") != nil)
            #expect(try await stores.sessions.session(idHash: "new") != nil)
            #expect(try await stores.integer("SELECT COUNT(*) FROM admin_sessions") == 2)
        }
    }
}
