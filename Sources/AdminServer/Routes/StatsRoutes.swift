import Foundation
import Hummingbird
import Shared

/// `/api/stats/*`: figures from what the collector records — hourly aggregates, key and token counters.
struct StatsRoutes {
    let services: AdminServices

    /// `UsageTotals` as the API shows them.
    struct TotalsView: Encodable {
        let requests: Int64
        let successes: Int64
        let failures: Int64
        let promptTokens: Int64
        let completionTokens: Int64
        let totalTokens: Int64
        let cachedTokens: Int64
        let reasoningTokens: Int64
        let audioInputTokens: Int64
        let audioOutputTokens: Int64
        @NullEncoded var cacheHitRate: Double?
        @NullEncoded var averageLatencyMs: Double?

        enum CodingKeys: String, CodingKey {
            case requests, successes, failures, promptTokens = "prompt_tokens", completionTokens = "completion_tokens"
            case totalTokens = "total_tokens", averageLatencyMs = "avg_latency_ms", cachedTokens = "cached_tokens"
            case reasoningTokens = "reasoning_tokens", audioInputTokens = "audio_input_tokens"
            case audioOutputTokens = "audio_output_tokens", cacheHitRate = "cache_hit_rate"
        }

        init(_ totals: UsageTotals) {
            requests = totals.requests
            successes = totals.successes
            failures = totals.failures
            promptTokens = totals.promptTokens
            completionTokens = totals.completionTokens
            totalTokens = totals.promptTokens + totals.completionTokens
            cachedTokens = totals.details.cachedTokens
            reasoningTokens = totals.details.reasoningTokens
            audioInputTokens = totals.details.audioInputTokens
            audioOutputTokens = totals.details.audioOutputTokens
            cacheHitRate = totals.details.cacheHitRate
            averageLatencyMs = totals.requests > 0 ? totals.latencySum / Double(totals.requests) : nil
        }
    }

    struct Overview: Encodable {
        let keys: [String: Int]
        let tokens: [String: Int]
        let models: [String: Int]
        let allTime: TotalsView
        let today: TotalsView
        let lastHour: TotalsView
        let latencyToday: LatencyView
        enum CodingKeys: String, CodingKey {
            case keys, tokens, models, today, allTime = "all_time", lastHour = "last_hour"
            case latencyToday = "latency_today"
        }
    }

    /// Latency percentiles of today's latest requests (at most ``sampleLimit``), from the request log.
    struct LatencyView: Encodable {
        /// Requests the percentiles are taken over.
        let samples: Int
        @NullEncoded var p50Ms: Double?
        @NullEncoded var p95Ms: Double?
        @NullEncoded var p99Ms: Double?
        enum CodingKeys: String, CodingKey { case samples, p50Ms = "p50_ms", p95Ms = "p95_ms", p99Ms = "p99_ms" }

        /// The most rows read: bounds the cost of a dashboard refresh on a busy day.
        static let sampleLimit = 10_000

        /// Nearest-rank percentiles of `latencies`.
        init(_ latencies: [Double]) {
            let sorted = latencies.sorted()
            func rank(_ p: Double) -> Double? {
                sorted.isEmpty ? nil : sorted[max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)]
            }
            samples = sorted.count
            p50Ms = rank(0.50)
            p95Ms = rank(0.95)
            p99Ms = rank(0.99)
        }
    }

    struct PeriodView: Encodable {
        let period: String
        @NullEncoded var since: String?
        let totals: TotalsView
    }

    /// Requests per answer status over a period, from the request log (its retention bounds "all").
    struct StatusesView: Encodable {
        let period: String
        @NullEncoded var since: String?
        let data: [StatusCount]
    }

    struct StatusCount: Encodable {
        let status: Int
        let requests: Int

        init(_ count: UsageStatusCount) {
            status = count.status
            requests = count.requests
        }
    }

    struct HourView: Encodable {
        let hour: String
        let totals: TotalsView
    }

    struct HourlyView: Encodable {
        let hours: Int
        let data: [HourView]
    }

    struct KeyStats: Encodable {
        let keyID: Int64
        let name: String
        let keyHint: String
        let status: String
        let requests: Int64
        let successes: Int64
        let failures: Int64
        let promptTokens: Int64
        let completionTokens: Int64
        let cachedTokens: Int64
        let reasoningTokens: Int64
        let audioInputTokens: Int64
        let audioOutputTokens: Int64
        @NullEncoded var cacheHitRate: Double?
        @NullEncoded var lastUsed: Date?
        enum CodingKeys: String, CodingKey {
            case name, status, requests, successes, failures, keyID = "key_id", keyHint = "key_hint"
            case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", lastUsed = "last_used"
            case cachedTokens = "cached_tokens", reasoningTokens = "reasoning_tokens"
            case audioInputTokens = "audio_input_tokens", audioOutputTokens = "audio_output_tokens"
            case cacheHitRate = "cache_hit_rate"
        }

        /// A key's counters, and the token details summed from its hourly aggregates.
        init(_ key: UpstreamKey, details: TokenDetails) {
            keyID = key.id ?? 0
            name = key.name
            keyHint = key.hint
            status = key.status.rawValue
            requests = key.usageCount
            successes = key.successCount
            failures = key.failureCount
            promptTokens = key.promptTokens
            completionTokens = key.completionTokens
            cachedTokens = details.cachedTokens
            reasoningTokens = details.reasoningTokens
            audioInputTokens = details.audioInputTokens
            audioOutputTokens = details.audioOutputTokens
            cacheHitRate = details.cacheHitRate
            lastUsed = key.lastUsed
        }
    }

    /// Totals of one client token's requests.
    struct TokenStats: Encodable {
        let tokenID: Int64
        @NullEncoded var name: String?
        let totals: TotalsView
        enum CodingKeys: String, CodingKey { case name, totals, tokenID = "token_id" }
    }

    struct ModelStats: Encodable {
        let modelName: String
        let totals: TotalsView
        enum CodingKeys: String, CodingKey { case totals, modelName = "model_name" }
    }

    /// The periods `?period=` names (days in UTC).
    static let periods = ["all", "today", "7d", "30d"]

    /// The request's `?period=` (default all) and the first second (Unix) it covers; nil for all time.
    static func period(_ request: Request, now: Int64) throws -> (name: String, start: Int64?) {
        let name = try QueryInput(request).choice("period", periods, default: "all")
        switch name {
        case "today": return (name, startOfDay(now))
        case "7d": return (name, startOfDay(now) - 6 * 86_400)
        case "30d": return (name, startOfDay(now) - 29 * 86_400)
        default: return (name, nil)
        }
    }

    /// The start (Unix seconds, on an hour boundary) of today in UTC.
    private static func startOfDay(_ now: Int64) -> Int64 { (now / 1000) - (now / 1000) % 86_400 }

    func register(on api: APIGroup) {
        api.on(.get, "stats/overview") { _, _ in
            let now = services.now()
            let figures = try await services.reading.overview(
                today: Self.startOfDay(now), hour: (now / 1000) - (now / 1000) % 3600,
                latencySamples: LatencyView.sampleLimit)
            var keys = Dictionary(uniqueKeysWithValues: KeyStatus.allCases.map { ($0.rawValue, 0) })
            keys.merge(figures.keys) { _, counted in counted }
            keys["total"] = keys.values.reduce(0, +)
            var tokens = ["active": 0, "revoked": 0]
            tokens.merge(figures.tokens) { _, counted in counted }
            return try JSONResponse.make(
                Overview(
                    keys: keys, tokens: tokens, models: ["total": figures.models, "enabled": figures.enabledModels],
                    allTime: TotalsView(figures.allTime), today: TotalsView(figures.today),
                    lastHour: TotalsView(figures.lastHour), latencyToday: LatencyView(figures.latencies)))
        }
        api.on(.get, "stats/usage") { request, _ in
            let (period, since) = try Self.period(request, now: services.now())
            let totals = try await services.reading.totals(since: since)
            return try JSONResponse.make(
                PeriodView(period: period, since: since.map { ISOTime.format($0 * 1000) }, totals: TotalsView(totals)))
        }
        api.on(.get, "stats/statuses") { request, _ in
            let (period, since) = try Self.period(request, now: services.now())
            let counts = try await services.reading.statusCounts(since: since)
            return try JSONResponse.make(
                StatusesView(
                    period: period, since: since.map { ISOTime.format($0 * 1000) }, data: counts.map(StatusCount.init)))
        }
        api.on(.get, "stats/hourly") { request, _ in
            let hours = try QueryInput(request).int("hours", default: 24, in: 1...720)
            let current = (services.now() / 1000) - (services.now() / 1000) % 3600
            let first = current - Int64(hours - 1) * 3600
            let byHour = try await services.reading.hourlyTotals(from: first)
            let data = (0..<hours).map { index -> HourView in
                let hour = first + Int64(index) * 3600
                return HourView(hour: ISOTime.format(hour * 1000), totals: TotalsView(byHour[hour] ?? .zero))
            }
            return try JSONResponse.make(HourlyView(hours: hours, data: data))
        }
        api.on(.get, "stats/keys") { request, _ in
            let keyID = try QueryInput(request).id("key_id")
            var keys = try await services.keys.list()
            if let keyID {
                keys = keys.filter { $0.id == keyID }
                guard !keys.isEmpty else { throw APIError.notFound("No key with id \(keyID).", param: "key_id") }
            }
            let details = try await services.reading.tokenDetailsPerKey(keyID: keyID)
            return try JSONResponse.make(keys.map { KeyStats($0, details: details[$0.id ?? 0] ?? .none) })
        }
        api.on(.get, "stats/models") { request, _ in
            let model = try QueryInput(request).string("model_name")
            let totals = try await services.reading.modelTotals(model: model)
            return try JSONResponse.make(totals.map { ModelStats(modelName: $0.model, totals: TotalsView($0.totals)) })
        }
        api.on(.get, "stats/tokens") { request, _ in
            let tokenID = try QueryInput(request).id("token_id")
            let totals = try await services.reading.tokenTotals(tokenID: tokenID)
            return try JSONResponse.make(
                totals.map { TokenStats(tokenID: $0.tokenID, name: $0.name, totals: TotalsView($0.totals)) })
        }
        registerRefused(on: api)
    }
}
