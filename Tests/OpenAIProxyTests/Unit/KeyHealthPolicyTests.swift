import Foundation
import GRDB
import Logging
import Testing

@testable import ProxyWorker
@testable import Shared

@Suite("Key health policy")
struct KeyHealthPolicyTests {
    private let policy = KeyHealthPolicy()
    private let now: Int64 = 1_000_000

    @Test("401 and 403 make a key invalid, probed after 6 h; a region 403 is not the key's")
    func refused() {
        let (health, transition) = policy.apply(.refused(status: 401, message: "bad key"), to: .healthy, now: now)
        #expect(health.status == .invalid)
        #expect(health.nextProbeAt == now + 6 * 3_600_000)
        #expect(
            transition
                == KeyTransition(from: .active, to: .invalid, reason: "upstream answered 401: bad key", statusCode: 401)
        )
        let region = Array(#"{"error":{"code":"unsupported_country_region_territory","message":"no"}}"#.utf8)
        #expect(UpstreamVerdict.outcome(status: 403, body: region, header: { _ in nil }) == .success)
        let other = Array(#"{"error":{"code":"forbidden","message":"Project has no access"}}"#.utf8)
        #expect(
            UpstreamVerdict.outcome(status: 403, body: other, header: { _ in nil })
                == .refused(status: 403, message: "Project has no access"))
    }

    @Test(
        "429 cools for Retry-After, else a backoff from 5 s doubling to 10 min; insufficient_quota is quota_exhausted")
    func rateLimited() {
        let (cooled, transition) = policy.apply(.rateLimited(retryAfterMs: 2000), to: .healthy, now: now)
        #expect(cooled.status == .cooling)
        #expect(cooled.nextProbeAt == now + 2000)
        #expect(transition?.reason == "rate limited (429), retry after 2 s")
        #expect(!cooled.isEligible(now: now + 1999))
        #expect(cooled.isEligible(now: now + 2000))
        var health = KeyHealth.healthy
        var waits: [Int64] = []
        for _ in 0..<10 {
            health = policy.apply(.rateLimited(retryAfterMs: nil), to: health, now: now).0
            waits.append(health.nextProbeAt! - now)
            health = policy.coolingElapsed(health, now: health.nextProbeAt!).0
        }
        #expect(waits == [5000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 600_000, 600_000, 600_000])
        #expect(policy.apply(.success, to: health, now: now).0.coolingLevel == 0)
        let quota = Array(#"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"x"}}"#.utf8)
        let outcome = UpstreamVerdict.outcome(status: 429, body: quota, header: { _ in nil })
        #expect(outcome == .quotaExhausted(message: "x"))
        let (exhausted, _) = policy.apply(outcome, to: .healthy, now: now)
        #expect(exhausted.status == .quotaExhausted)
        #expect(exhausted.nextProbeAt == now + 3_600_000)
    }

    @Test("3 transient failures in a row cool a key; a success in between resets the count")
    func transientFailures() {
        let failure = KeyOutcome.transient(status: 500, reason: "upstream answered 500")
        var health = KeyHealth.healthy
        health = policy.apply(failure, to: health, now: now).0
        health = policy.apply(failure, to: health, now: now).0
        #expect(health.status == .active)
        #expect(health.consecutiveFailures == 2)
        #expect(health.successChangesSomething)
        let reset = policy.apply(.success, to: health, now: now).0
        #expect(reset == KeyHealth.healthy)
        let (cooled, transition) = policy.apply(failure, to: health, now: now)
        #expect(cooled.status == .cooling)
        #expect(cooled.nextProbeAt == now + 5000)
        #expect(transition?.reason.hasPrefix("3 failures in a row (last: upstream answered 500)") == true)
        // Back from cooling, one more failure cools it again, for twice as long.
        let back = policy.coolingElapsed(cooled, now: now + 5000)
        #expect(back.1?.to == .active)
        let again = policy.apply(failure, to: back.0, now: now + 6000).0
        #expect(again.status == .cooling)
        #expect(again.nextProbeAt == now + 6000 + 10_000)
    }

    @Test("probes bring keys back; failed probes reschedule; disabled keys never change")
    func probes() {
        let invalid = policy.apply(.refused(status: 401, message: "x"), to: .healthy, now: now).0
        let (still, none) = policy.probed(.refused(status: 401, message: "x"), health: invalid, now: now + 10)
        #expect(none == nil)
        #expect(still.nextProbeAt == now + 10 + 6 * 3_600_000)
        let (back, transition) = policy.probed(.success, health: invalid, now: now + 20)
        #expect(back.status == .active)
        #expect(back.nextProbeAt == nil)
        #expect(transition?.reason == "probe succeeded")
        let disabled = KeyHealth(status: .disabled)
        #expect(policy.apply(.refused(status: 401, message: "x"), to: disabled, now: now).0 == disabled)
        #expect(policy.probed(.success, health: disabled, now: now).0 == disabled)
    }

    @Test("rate-limit headers: durations, Retry-After, headroom")
    func rateLimitHeaders() {
        #expect(RateLimitHeaders.milliseconds("1s") == 1000)
        #expect(RateLimitHeaders.milliseconds("6m0s") == 360_000)
        #expect(RateLimitHeaders.milliseconds("20ms") == 20)
        #expect(RateLimitHeaders.milliseconds("1h2m3.5s") == 3_723_500)
        #expect(RateLimitHeaders.milliseconds("2") == 2000)
        #expect(RateLimitHeaders.milliseconds("soon") == nil)
        #expect(RateLimitHeaders.milliseconds("5x") == nil)
        let headers = [
            "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "9000",
            "x-ratelimit-reset-requests": "1.5s", "x-ratelimit-reset-tokens": "6m0s",
        ]
        let state = RateLimitHeaders.state(now: now, header: { headers[$0] })
        #expect(
            state
                == RateLimitState(
                    remainingRequests: 0, remainingTokens: 9000, resetRequestsAt: now + 1500,
                    resetTokensAt: now + 360_000, observedAt: now))
        #expect(state?.hasHeadroom(now: now + 1499) == false)
        #expect(state?.hasHeadroom(now: now + 1500) == true)
        #expect(RateLimitHeaders.retryAfterMs(header: { headers[$0] }) == 1500)
        #expect(RateLimitHeaders.retryAfterMs(header: { ["retry-after": "2", "retry-after-ms": "750"][$0] }) == 750)
        #expect(RateLimitHeaders.retryAfterMs(header: { ["retry-after": "2"][$0] }) == 2000)
        #expect(RateLimitHeaders.state(now: now, header: { _ in nil }) == nil)
    }

    @Test("event streams are passed on up to their last whole event")
    func eventFraming() {
        func complete(_ text: String) -> Int {
            Array(text.utf8).withUnsafeBytes { EventStreamFraming.completeLength($0) }
        }
        #expect(complete("data: a\n\ndata: b\n\n") == 18)
        #expect(complete("data: a\n\ndata: b") == 9)
        #expect(complete("data: a\r\n\r\ndata") == 11)
        #expect(complete("data: partial") == 0)
        #expect(complete("") == 0)
    }
}

@Suite("Key routing")
struct KeyRoutingTests {
    private func pool(_ keys: [(Int64, KeyHealth, Set<String>?)]) -> RoutingSnapshot {
        RoutingSnapshot(
            generation: 1,
            keys: keys.map { id, health, models in
                PoolKey(key: RoutableKey(id: id, hint: "k\(id)", value: "v\(id)"), health: health, models: models)
            }, tokens: [:])
    }

    private func board() throws -> (KeyHealthBoard, TestDatabase) {
        let test = try TestDatabase()
        let store = KeyHealthStore(database: test.database, policy: KeyHealthPolicy(), logger: Logger(label: "test"))
        return (KeyHealthBoard(store: store, logger: Logger(label: "test")), test)
    }

    private func ids(_ route: KeyHealthBoard.Route) -> [Int64]? {
        guard case .candidates(let keys) = route else { return nil }
        return keys.map(\.id)
    }

    @Test("eligible keys that reach the model and were not tried; 404 when no key reaches it")
    func eligibility() throws {
        let (board, _) = try board()
        let now: Int64 = 10_000
        let snapshot = pool([
            (1, .healthy, ["gpt-a"]),
            (2, KeyHealth(status: .cooling, nextProbeAt: now + 3500), nil),
            (3, KeyHealth(status: .cooling, nextProbeAt: now - 1), nil),
            (4, KeyHealth(status: .invalid, nextProbeAt: now + 60_000), nil),
            (5, .healthy, ["gpt-b"]),
        ])
        #expect(ids(board.route(snapshot, model: "gpt-a", excluding: [], now: now)) == [1, 3])
        #expect(ids(board.route(snapshot, model: nil, excluding: [], now: now)) == [1, 3, 5])
        #expect(ids(board.route(snapshot, model: "gpt-a", excluding: [1], now: now)) == [3])
        #expect(board.route(snapshot, model: "gpt-a", excluding: [1, 3], now: now) == .exhausted)
        let onlyKnown = pool([(1, .healthy, ["gpt-a"]), (5, .healthy, ["gpt-b"])])
        #expect(board.route(onlyKnown, model: "gpt-c", excluding: [], now: now) == .modelNotFound)
        let cooling = pool([
            (2, KeyHealth(status: .cooling, nextProbeAt: now + 3500), nil),
            (4, KeyHealth(status: .invalid, nextProbeAt: now + 60_000), nil),
        ])
        #expect(board.route(cooling, model: nil, excluding: [], now: now) == .unavailable(retryAfterSeconds: 4))
        #expect(board.route(pool([]), model: nil, excluding: [], now: now) == .noKeys)
    }

    @Test("keys without rate-limit headroom, and failing keys on a retry, are used last")
    func preferences() throws {
        let (board, _) = try board()
        let now: Int64 = 10_000
        let failing = KeyHealth(status: .active, consecutiveFailures: 1)
        let snapshot = pool([(1, .healthy, nil), (2, .healthy, nil), (3, failing, nil)])
        board.observe(
            RateLimitState(
                remainingRequests: 0, remainingTokens: 100, resetRequestsAt: now + 1000, resetTokensAt: nil,
                observedAt: now), keyID: 1)
        #expect(ids(board.route(snapshot, model: nil, excluding: [], now: now)) == [2, 3])
        #expect(ids(board.route(snapshot, model: nil, excluding: [2], now: now)) == [1, 3])
        #expect(ids(board.route(snapshot, model: nil, excluding: [2, 3], now: now)) == [1])
        #expect(ids(board.route(snapshot, model: nil, excluding: [], now: now + 1000)) == [1, 2, 3])
    }

    @Test("a failure takes effect in this worker at once, and in the database with a key_events row")
    func reportedFailure() async throws {
        let (board, test) = try board()
        _ = try await test.keys.add(name: "a", value: "sk-routing-aaaaaaaa-01")
        let snapshot = try await RoutingSnapshot.load(from: test.database, box: test.box, logger: Logger(label: "t"))
        let key = try #require(snapshot.keys.first?.key)
        let now = WallClock.nowMs()
        try await withRunningServices([board]) { () async throws in
            board.report(.refused(status: 401, message: "no"), key: key, snapshot: snapshot, now: now)
            #expect(
                board.route(snapshot, model: nil, excluding: [], now: now) == .unavailable(retryAfterSeconds: 21_600))
            #expect(
                try await eventually {
                    try await test.database.pool.read { db in
                        try String.fetchOne(
                            db, sql: "SELECT to_status FROM key_events WHERE key_id = ?", arguments: [key.id])
                    } == "invalid"
                })
        }
        let reloaded = try await RoutingSnapshot.load(from: test.database, box: test.box, logger: Logger(label: "t"))
        #expect(reloaded.keys.first?.health.status == .invalid)
        // An operator's change shows once the snapshot has it, whatever this worker learned before.
        #expect(try await test.keys.setStatus(id: key.id, .active))
        let cleared = try await RoutingSnapshot.load(from: test.database, box: test.box, logger: Logger(label: "t"))
        #expect(ids(board.route(cleared, model: nil, excluding: [], now: now)) == [key.id])
    }

    @Test("marks reported right before a graceful shutdown are all in the database once the board's service returns")
    func marksSurviveShutdown() async throws {
        let (board, test) = try board()
        for index in 1...40 { _ = try await test.keys.add(name: "k\(index)", value: "sk-drain-mark-\(index)-0000000") }
        let snapshot = try await RoutingSnapshot.load(from: test.database, box: test.box, logger: Logger(label: "t"))
        #expect(snapshot.keys.count == 40)
        let now = WallClock.nowMs()
        try await withRunningServices([board]) { () async throws in
            for pooled in snapshot.keys {
                #expect(
                    board.report(.refused(status: 401, message: "no"), key: pooled.key, snapshot: snapshot, now: now))
            }
        }
        // No waiting here: the shutdown returned only after every queued mark was written.
        let invalid = try await test.database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM keys WHERE status = 'invalid'")
        }
        #expect(invalid == 40)
        // What this worker reports once the writer stopped still holds here, though it is not saved.
        _ = try await test.keys.add(name: "late", value: "sk-drain-mark-late-0000000")
        let later = try await RoutingSnapshot.load(from: test.database, box: test.box, logger: Logger(label: "t"))
        let late = try #require(later.keys.first { $0.health.status == .active }?.key)
        #expect(board.report(.refused(status: 401, message: "no"), key: late, snapshot: later, now: now))
        #expect(board.route(later, model: nil, excluding: [], now: now) == .unavailable(retryAfterSeconds: 21_600))
    }
}
