import Testing

@testable import Shared

/// `PoolStateReading` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Pool state")
struct PoolStateStoreTests {
    @Test(
        "the state holds the keys not disabled with their health, active tokens, enabled models and overrides",
        arguments: StoreEngine.tested)
    func state(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let empty = try await stores.pool.state()
            #expect(empty.keys.isEmpty && empty.tokens.isEmpty && empty.settingsOverrides.isEmpty)
            #expect(empty.enabledModels == nil, "no models at all: the proxy passes /v1/models on")
            #expect(empty.generation == (try await stores.pool.generation()))

            var ids: [Int64] = []
            for index in 1...3 {
                guard
                    case .added(let key) = try await stores.keys.add(
                        name: "k\(index)", value: "sk-pool-state-00000\(index)", status: .active)
                else { throw PoolTestError.notAdded }
                ids.append(try #require(key.id))
            }
            _ = try await stores.keys.setStatus(id: ids[1], .disabled, reason: "operator")
            try await stores.execute(
                """
                UPDATE keys SET status = 'cooling', status_reason = 'rate limited', status_code = 429,
                    status_since = 5, next_probe_at = 9, consecutive_failures = 2, cooling_level = 1,
                    models = '["gpt"]'
                WHERE id = \(ids[2])
                """)
            let (kept, _) = try await stores.tokens.create(
                name: "kept", limits: ClientTokenLimits(tokenQuota: 1_000), audit: nil)
            let (revoked, _) = try await stores.tokens.create(name: "gone", limits: ClientTokenLimits(), audit: nil)
            _ = try await stores.tokens.revoke(id: try #require(revoked.id), audit: nil)
            try await stores.models.create(
                ModelEntry(name: "zeta", description: "", enabled: true, source: "manual"), audit: nil)
            try await stores.models.create(
                ModelEntry(name: "alpha", description: "", enabled: true, source: "manual"), audit: nil)
            try await stores.models.create(
                ModelEntry(name: "off", description: "", enabled: false, source: "manual"), audit: nil)
            try await stores.settings.change([(.maxBodyBytes, "4096")], now: 1, audit: nil)

            let state = try await stores.pool.state()
            #expect(state.generation > empty.generation)
            #expect(state.generation == (try await stores.pool.generation()))
            #expect(state.keys.map(\.id) == [ids[0], ids[2]])
            #expect(state.disabledKeyIDs == [ids[1]] && empty.disabledKeyIDs.isEmpty)
            #expect(
                try state.keys.map { try stores.box.open($0.sealed) } == [
                    "sk-pool-state-000001", "sk-pool-state-000003",
                ])
            #expect(
                state.keys[0].health.status == .active && state.keys[0].health.reason == nil
                    && state.keys[0].health.nextProbeAt == nil && state.keys[0].health.consecutiveFailures == 0
                    && state.keys[0].models == nil)
            #expect(
                state.keys[1].health
                    == KeyHealth(
                        status: .cooling, reason: "rate limited", statusCode: 429, since: 5, nextProbeAt: 9,
                        consecutiveFailures: 2, coolingLevel: 1))
            #expect(state.keys[1].models == "[\"gpt\"]")
            #expect(state.keys[0].hint == SecretDigest.hint("sk-pool-state-000001"))
            #expect(state.tokens.map(\.id) == [kept.id])
            #expect(state.tokens.first?.limits.tokenQuota == 1_000)
            #expect(state.enabledModels?.map(\.name) == ["alpha", "zeta"])
            #expect(state.settingsOverrides == ["max_body_bytes": "4096"])
        }
    }

    @Test("tokens used are read for active tokens with a quota only", arguments: StoreEngine.tested)
    func tokensUsed(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            let (quota, _) = try await stores.tokens.create(
                name: "q", limits: ClientTokenLimits(tokenQuota: 1_000), audit: nil)
            let (free, _) = try await stores.tokens.create(name: "f", limits: ClientTokenLimits(), audit: nil)
            let quotaID = try #require(quota.id)
            let freeID = try #require(free.id)
            try await stores.execute(
                "UPDATE client_tokens SET prompt_tokens = 30, completion_tokens = 12 WHERE id IN (\(quotaID), \(freeID))"
            )
            #expect(try await stores.pool.tokensUsed() == [quotaID: 42])
            _ = try await stores.tokens.revoke(id: quotaID, audit: nil)
            #expect(try await stores.pool.tokensUsed().isEmpty)
        }
    }

    private enum PoolTestError: Error { case notAdded }
}
