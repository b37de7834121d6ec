import Foundation

/// The request log as `GET /api/usage` pages it, the same on every engine: `StatsReader` (SQLite) and
/// `PostgresStatsReader`, held to one behaviour by one suite run against both.
public protocol UsageLogReading: Sendable {
    /// The rows `filter` matches, newest first (then by id, newest first), `limit` from `offset`; and how many
    /// match in all, read from the same snapshot as the page.
    func usagePage(
        _ filter: UsageLogFilter, limit: Int, offset: Int
    ) async throws -> (entries: [UsageLogEntry], total: Int)
}

/// What `/api/stats/*` and the keys' token details read — the hourly aggregates, the request log's statuses and
/// latencies, the refused counts, the pool's counts — the same on every engine: `StatsReader` (SQLite) and
/// `PostgresStatsReader`, held to one behaviour by one suite run against both. Times are Unix seconds (hours
/// start on an hour boundary); nil means all time.
public protocol StatsReading: Sendable {
    /// The pool's counts, the totals of all time, since `today` and since `hour`, and the latencies of the
    /// latest `latencySamples` requests since `today` (newest first), read in one snapshot.
    func overview(today: Int64, hour: Int64, latencySamples: Int) async throws -> StatsOverviewFigures
    /// The totals of the aggregates since `hour`.
    func totals(since hour: Int64?) async throws -> UsageTotals
    /// Requests per status answered since `since`, from the request log, by status.
    func statusCounts(since: Int64?) async throws -> [UsageStatusCount]
    /// The totals of each hour from `first` on that has any, by hour.
    func hourlyTotals(from first: Int64) async throws -> [Int64: UsageTotals]
    /// All-time totals per model named (of one model, or of every one), by model name in byte order.
    func modelTotals(model: String?) async throws -> [ModelTotals]
    /// All-time totals per client token (of one, or of every one), by token id, with the token's name.
    func tokenTotals(tokenID: Int64?) async throws -> [TokenTotals]
    /// All-time token details per key (of one, or of every key that has any), by key id.
    func tokenDetailsPerKey(keyID: Int64?) async throws -> [Int64: TokenDetails]
    /// Requests refused before a client token was known since `since`, per reason as stored.
    func refusedCounts(since: Int64?) async throws -> [String: Int64]
}

/// What `/metrics` reads from the database at each scrape, the same on every engine: `StatsReader` (SQLite) and
/// `PostgresStatsReader`.
public protocol MetricsReading: Sendable {
    /// Every key's state, and the model names the service knows.
    func metricsFigures() async throws -> MetricsFigures
}

/// Everything the admin API reads for statistics, the request log and metrics.
public typealias AdminReading = MetricsReading & StatsReading & UsageLogReading

/// Requests answered with one status.
public struct UsageStatusCount: Sendable, Equatable {
    /// The status.
    public var status: Int
    /// How many requests.
    public var requests: Int

    /// A count from its parts.
    public init(status: Int, requests: Int) {
        self.status = status
        self.requests = requests
    }
}

/// One model's totals.
public struct ModelTotals: Sendable, Equatable {
    /// The model name.
    public var model: String
    /// Its totals.
    public var totals: UsageTotals
}

/// One client token's totals.
public struct TokenTotals: Sendable, Equatable {
    /// The token's id.
    public var tokenID: Int64
    /// Its name; nil when the token is gone.
    public var name: String?
    /// Its totals.
    public var totals: UsageTotals
}

/// The pool's counts and the usage figures `GET /api/stats/overview` shows.
public struct StatsOverviewFigures: Sendable, Equatable {
    /// Keys per state (states with none left out).
    public var keys: [String: Int]
    /// Client tokens per state, internal ones left out (states with none left out).
    public var tokens: [String: Int]
    /// Models in the models table.
    public var models: Int
    /// Models enabled.
    public var enabledModels: Int
    /// All-time totals.
    public var allTime: UsageTotals
    /// Totals since the start of the day.
    public var today: UsageTotals
    /// Totals since the start of the hour.
    public var lastHour: UsageTotals
    /// Latencies (ms) of the day's latest requests, newest first.
    public var latencies: [Double]
}

/// What `/metrics` reads at each scrape.
public struct MetricsFigures: Sendable, Equatable {
    /// Every key's state, by key id.
    public var keyStatuses: [Int64: String]
    /// The model names of the models table and of the keys' model lists.
    public var models: Set<String>

    /// Figures from the stored rows: key ids and states, model names, and the keys' model lists as stored (JSON
    /// arrays of strings; anything else, such as text that is not JSON, adds no model).
    init(keys: [(id: Int64, status: String, models: String?)], modelNames: [String]) {
        keyStatuses = Dictionary(keys.map { ($0.id, $0.status) }, uniquingKeysWith: { first, _ in first })
        var models = Set(modelNames)
        for list in keys.compactMap(\.models) {
            if let names = try? JSONDecoder().decode([String].self, from: Data(list.utf8)) { models.formUnion(names) }
        }
        self.models = models
    }
}
