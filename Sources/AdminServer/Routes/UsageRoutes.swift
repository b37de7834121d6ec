import Foundation
import Hummingbird
import Shared

/// `GET /api/usage`: the request log, newest first, paged and filtered by key, model, client token,
/// status and time range.
struct UsageRoutes {
    let services: AdminServices

    struct Entry: Encodable {
        let id: Int64
        let requestID: String
        let timestamp: String
        let worker: Int
        @NullEncoded var keyID: Int64?
        @NullEncoded var tokenID: Int64?
        @NullEncoded var model: String?
        let method: String
        let path: String
        let status: Int
        let latencyMs: Double
        @NullEncoded var ttfbMs: Double?
        let streamed: Bool
        @NullEncoded var promptTokens: Int?
        @NullEncoded var completionTokens: Int?
        @NullEncoded var totalTokens: Int?
        /// The token details: null when the answer did not report them.
        @NullEncoded var cachedTokens: Int?
        @NullEncoded var reasoningTokens: Int?
        @NullEncoded var audioInputTokens: Int?
        @NullEncoded var audioOutputTokens: Int?
        @NullEncoded var error: String?

        enum CodingKeys: String, CodingKey {
            case id, worker, model, method, path, status, streamed, error, timestamp, requestID = "request_id"
            case keyID = "key_id", tokenID = "token_id", latencyMs = "latency_ms", ttfbMs = "ttfb_ms"
            case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
            case cachedTokens = "cached_tokens", reasoningTokens = "reasoning_tokens"
            case audioInputTokens = "audio_input_tokens", audioOutputTokens = "audio_output_tokens"
        }

        init(_ entry: UsageLogEntry) {
            id = entry.id
            requestID = entry.requestID
            timestamp = ISOTime.format(entry.timestamp)
            worker = entry.worker
            keyID = entry.keyID
            tokenID = entry.tokenID
            model = entry.model
            method = entry.method
            path = entry.path
            status = entry.status
            latencyMs = entry.latencyMs
            ttfbMs = entry.ttfbMs
            streamed = entry.streamed
            promptTokens = entry.promptTokens
            completionTokens = entry.completionTokens
            totalTokens = entry.totalTokens
            cachedTokens = entry.cachedTokens
            reasoningTokens = entry.reasoningTokens
            audioInputTokens = entry.audioInputTokens
            audioOutputTokens = entry.audioOutputTokens
            error = entry.error
        }
    }

    /// One page of a list, with how many items match in all.
    struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
        let data: [Item]
        let total: Int
        let limit: Int
        let offset: Int
    }

    func register(on api: APIGroup) {
        api.on(.get, "usage") { request, _ in
            let query = QueryInput(request)
            let limit = try query.int("limit", default: 50, in: 1...500)
            let offset = try query.int("offset", default: 0, in: 0...10_000_000)
            var filter = UsageLogFilter(
                keyID: try query.id("key_id"), tokenID: try query.id("token_id"), model: try query.string("model"),
                status: try query.optionalInt("status", in: 100...599))
            filter.from = try query.time("from")
            filter.to = try query.time("to")
            if let from = filter.from, let to = filter.to, from > to {
                throw APIError.invalid("from", "must not be after to")
            }
            let (entries, total) = try await services.reading.usagePage(filter, limit: limit, offset: offset)
            let page = Page(data: entries.map(Entry.init), total: total, limit: limit, offset: offset)
            return try JSONResponse.make(page)
        }
    }
}

/// `GET /api/audit`: every change made through the admin API, newest first.
struct AuditRoutes {
    let services: AdminServices

    struct EntryView: Encodable {
        let id: Int64
        let timestamp: String
        let actor: String
        let client: String
        let action: String
        @NullEncoded var target: String?
        @NullEncoded var detail: String?

        init(_ entry: AuditEntry) {
            id = entry.id ?? 0
            timestamp = ISOTime.format(entry.timestamp)
            actor = entry.actor
            client = entry.client
            action = entry.action
            target = entry.target
            detail = entry.detail
        }
    }

    func register(on api: APIGroup) {
        api.on(.get, "audit") { request, _ in
            let query = QueryInput(request)
            let limit = try query.int("limit", default: 50, in: 1...500)
            let offset = try query.int("offset", default: 0, in: 0...10_000_000)
            let (entries, total) = try await services.audit.page(
                limit: limit, offset: offset, action: try query.string("action"))
            return try JSONResponse.make(
                UsageRoutes.Page(data: entries.map(EntryView.init), total: total, limit: limit, offset: offset))
        }
    }
}
