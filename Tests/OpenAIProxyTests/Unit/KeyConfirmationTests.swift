import Foundation
import GRDB
import Logging
import Testing

@testable import ProxyWorker
@testable import Shared

@Suite("Refusals that blame the request, and keys a request marked invalid")
struct KeyConfirmationTests {
    private let policy = KeyHealthPolicy()
    private let now: Int64 = 1_000_000

    private func outcome(_ status: Int, _ body: String) -> KeyOutcome {
        UpstreamVerdict.outcome(status: status, body: Array(body.utf8), header: { _ in nil })
    }

    @Test("401/403 that blame the request's headers, scopes or model mark nothing; the key's own refusals do")
    func blame() {
        let requests = [
            (
                401,
                #"{"error":{"message":"OpenAI-Organization header should match organization for API key","type":"invalid_request_error","param":null,"code":"mismatched_organization"}}"#
            ),
            (
                401,
                #"{"error":{"message":"OpenAI-Project header should match project for API key","type":"invalid_request_error","param":null,"code":"mismatched_project"}}"#
            ),
            (
                401,
                #"{"error":{"message":"You have insufficient permissions for this operation. Missing scopes: model.request. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.","type":"invalid_request_error","param":null,"code":null}}"#
            ),
            (
                403,
                #"{"error":{"message":"Project `proj_abc` does not have access to model `gpt-4o-mini`","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#
            ),
            (
                403,
                #"{"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","code":"unsupported_country_region_territory"}}"#
            ),
        ]
        for (status, body) in requests { #expect(outcome(status, body) == .success, "\(body)") }

        let keys = [
            (
                401,
                #"{"error":{"message":"Incorrect API key provided: sk-proj-****wxyz. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
            ),
            (
                401,
                #"{"error":{"message":"Your account is not active, please check your billing details on our website.","type":"invalid_request_error","code":"account_deactivated"}}"#
            ),
            (
                401,
                #"{"error":{"message":"You must be a member of an organization to use the API.","type":"invalid_request_error","code":"no_organization"}}"#
            ),
            // A key-blaming code wins over a message that would blame the request.
            (401, #"{"error":{"message":"Missing scopes: x","code":"invalid_api_key"}}"#),
            (401, ""),
            (403, "<html>Forbidden</html>"),
        ]
        for (status, body) in keys {
            guard case .refused(let code, _) = outcome(status, body) else {
                Issue.record("not refused: \(body)")
                continue
            }
            #expect(code == status)
        }
    }

    @Test("a request's refusal marks the key with its token and asks for a probe in 2 s, not 6 h")
    func marked() {
        let refusal = KeyOutcome.refused(status: 401, message: "Incorrect API key")
        let (marked, transition) = policy.apply(refusal, to: .healthy, now: now, token: 7)
        #expect(marked.status == .invalid)
        #expect(marked.markedByToken == 7)
        #expect(marked.awaitsConfirmation)
        #expect(marked.nextProbeAt == now + 2000)
        #expect(transition?.to == .invalid)
        #expect(transition?.reason.hasSuffix("a probe confirms") == true)
        // A second request's refusal neither moves the probe nor changes the mark.
        let again = policy.apply(refusal, to: marked, now: now + 500, token: 8)
        #expect(again.0 == marked)
        #expect(again.1 == nil)
        // A confirmed invalid key is not re-marked by a request either.
        let confirmed = policy.apply(refusal, to: .healthy, now: now).0
        #expect(confirmed.markedByToken == nil)
        #expect(confirmed.nextProbeAt == now + 6 * 3_600_000)
        #expect(policy.apply(refusal, to: confirmed, now: now + 1, token: 7).0 == confirmed)
    }

    @Test("the probe decides: a pass brings the key back, a refusal confirms it, no answer probes again soon")
    func probeDecides() {
        let marked = policy.apply(.refused(status: 401, message: "x"), to: .healthy, now: now, token: 7).0
        let (back, transition) = policy.probed(.success, health: marked, now: now + 2000)
        #expect(back.status == .active)
        #expect(back.markedByToken == nil)
        #expect(transition?.reason == "probe succeeded")

        let (confirmed, none) = policy.probed(.refused(status: 401, message: "x"), health: marked, now: now + 2000)
        #expect(none == nil)
        #expect(confirmed.status == .invalid)
        #expect(confirmed.markedByToken == nil)
        #expect(confirmed.nextProbeAt == now + 2000 + 6 * 3_600_000)

        let (unanswered, _) = policy.probed(
            .transient(status: nil, reason: "no answer"), health: marked, now: now + 2000)
        #expect(unanswered.awaitsConfirmation)
        #expect(unanswered.nextProbeAt == now + 4000)
        // Leaving invalid any other way drops the mark too.
        #expect(policy.apply(.success, to: marked, now: now + 10).0.markedByToken == nil)
    }

    @Test("one token's mark awaiting its probe keeps its other refusals from marking; other tokens' do not")
    func oneMarkPerToken() {
        let marks = [(key: Int64(1), token: Int64(7))]
        #expect(!KeyHealthPolicy.refusalMayMark(keyID: 2, token: 7, marks: marks))
        #expect(KeyHealthPolicy.refusalMayMark(keyID: 1, token: 7, marks: marks))
        #expect(KeyHealthPolicy.refusalMayMark(keyID: 2, token: 8, marks: marks))
        #expect(KeyHealthPolicy.refusalMayMark(keyID: 2, token: 7, marks: []))
    }

    private func status(_ test: TestDatabase, _ id: Int64) async throws -> (String, Int64?) {
        try await test.database.pool.read { db in
            let row = try #require(
                try Row.fetchOne(db, sql: "SELECT status, marked_by_token FROM keys WHERE id = ?", arguments: [id]))
            return (row["status"], row["marked_by_token"])
        }
    }

    @Test("the database holds the rule for every worker: a second key refused for the same token stays active")
    func storeHoldsTheRule() async throws {
        let test = try TestDatabase()
        let store = KeyHealthStore(database: test.database, policy: policy, logger: Logger(label: "test"))
        guard case .added(let first) = try await test.keys.add(name: "a", value: "sk-confirm-aaaaaaaa-01"),
            case .added(let second) = try await test.keys.add(name: "b", value: "sk-confirm-bbbbbbbb-02"),
            let a = first.id, let b = second.id
        else {
            Issue.record("keys not added")
            return
        }
        let refusal = KeyOutcome.refused(status: 401, message: "Incorrect API key")
        let marked = try #require(try await store.record(refusal, keyID: a, token: 7))
        #expect(marked.health.awaitsConfirmation)
        #expect(try await status(test, a) == ("invalid", 7))
        let declined = try #require(try await store.record(refusal, keyID: b, token: 7))
        #expect(declined.transition == nil)
        #expect(declined.health.status == .active)
        #expect(try await status(test, b) == ("active", nil))
        // Another token's request may mark another key.
        #expect(try await store.record(refusal, keyID: b, token: 8)?.health.markedByToken == 8)
        #expect(try await store.keysDueForProbe(now: WallClock.nowMs() + 2100).sorted() == [a, b].sorted())
        // The probe agrees with nothing: key a is back, its mark gone, and token 7 may mark again.
        let probe = KeyHealthStore.ProbeRecord(outcome: .success, status: 200, latencyMs: 1, models: nil, error: nil)
        try await store.recordProbe(probe, keyID: a)
        #expect(try await status(test, a) == ("active", nil))
        // An operator's change drops a mark too.
        #expect(try await test.keys.setStatus(id: b, .active))
        #expect(try await status(test, b) == ("active", nil))
        #expect(try await store.record(refusal, keyID: b, token: 7)?.health.markedByToken == 7)
    }

    @Test("a worker declines a second mark for the same token at once, before the database is asked")
    func boardDeclines() async throws {
        let test = try TestDatabase()
        let store = KeyHealthStore(database: test.database, policy: policy, logger: Logger(label: "test"))
        let board = KeyHealthBoard(store: store, logger: Logger(label: "test"))
        _ = try await test.keys.add(name: "a", value: "sk-confirm-aaaaaaaa-01")
        _ = try await test.keys.add(name: "b", value: "sk-confirm-bbbbbbbb-02")
        let snapshot = try await RoutingSnapshot.load(from: test.database, box: test.box, logger: Logger(label: "t"))
        let keys = snapshot.keys.map(\.key)
        #expect(keys.count == 2)
        let refusal = KeyOutcome.refused(status: 401, message: "Incorrect API key")
        let now = WallClock.nowMs()
        try await withRunningServices([board]) { () async throws in
            #expect(board.report(refusal, key: keys[0], snapshot: snapshot, now: now, token: 7))
            #expect(!board.report(refusal, key: keys[1], snapshot: snapshot, now: now, token: 7))
            guard case .candidates(let left) = board.route(snapshot, model: nil, excluding: [], now: now) else {
                Issue.record("no candidates")
                return
            }
            #expect(left.map(\.id) == [keys[1].id])
            #expect(
                try await eventually {
                    try await status(test, keys[0].id) == ("invalid", 7)
                })
            #expect(try await status(test, keys[1].id) == ("active", nil))
        }
    }
}
