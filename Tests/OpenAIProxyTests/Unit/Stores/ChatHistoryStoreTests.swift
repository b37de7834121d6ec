import Foundation
import Testing

@testable import Shared
@testable import StatsCollector

/// `ChatHistoryStoring` on every engine: one suite, so SQLite and PostgreSQL cannot drift.
@Suite("Chat history store")
struct ChatHistoryStoreTests {
    @Test(
        "the console's exchanges read back newest first, paged, with the serving key's current name",
        arguments: StoreEngine.tested)
    func pages(engine: StoreEngine) async throws {
        try await engine.withStores { stores in
            guard
                case .added(let key) = try await stores.keys.add(
                    name: "k", value: "sk-chat-store-0000001", status: .active)
            else { throw ChatTestError.notAdded }
            let keyID = try #require(key.id)
            let start = Date(timeIntervalSince1970: 1_700_000_000)
            try await stores.chat.record(
                model: "gpt", keyID: keyID, request: "[1]", response: "one", timestamp: start)
            try await stores.chat.record(
                model: "gpt", keyID: nil, request: "[2]", response: "two", timestamp: start + 60)
            try await stores.chat.record(
                model: "o3", keyID: 999, request: "[3]", response: "three", timestamp: start + 120)
            // A proxied request's row, written by the collector, is in the same history.
            var proxied = UsageRow(
                requestID: "p1", timestamp: 1_700_000_030_000, worker: 0, keyID: keyID, tokenID: nil, model: "gpt",
                method: "POST", path: "/v1/chat/completions", status: 200, latencyMs: 1, ttfbMs: nil, streamed: false,
                promptTokens: nil, completionTokens: nil, totalTokens: nil, error: nil, keepsChatHistory: true)
            proxied.chatRequest = "[p]"
            _ = try await stores.usage.commit([proxied], refused: [])

            let all = try await stores.chat.page(limit: 10, offset: 0)
            #expect(all.total == 4)
            #expect(all.conversations.map(\.response) == ["three", "two", nil, "one"])
            #expect(all.conversations.map(\.request) == ["[3]", "[2]", "[p]", "[1]"])
            let first = try #require(all.conversations.last)
            #expect(first.model == "gpt" && first.keyID == keyID && first.keyName == "k")
            #expect(abs(first.timestamp.timeIntervalSince(start)) < 0.001)
            #expect(all.conversations[0].keyID == 999 && all.conversations[0].keyName == nil)
            #expect(all.conversations[1].keyID == nil && all.conversations[1].keyName == nil)
            #expect(all.conversations[2].keyName == "k")
            let second = try await stores.chat.page(limit: 2, offset: 1)
            #expect(second.total == 4 && second.conversations.map(\.request) == ["[2]", "[p]"])
            #expect(try await stores.chat.conversation(id: first.id) == first)
            #expect(try await stores.chat.conversation(id: 12_345) == nil)
        }
    }

    private enum ChatTestError: Error { case notAdded }
}
