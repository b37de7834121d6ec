import Shared

/// What a batch's new usage rows add to the aggregate tables and the chat history, folded in memory so that
/// each aggregate row is written once per batch, whatever the engine.
struct UsageAggregates {
    typealias HourlyKey = UsageBatchWriter.HourlyKey
    typealias Totals = UsageBatchWriter.Totals

    /// `usage_hourly`: per hour × key × model × client token (0 / "" when unknown).
    private(set) var hourly: [HourlyKey: Totals] = [:]
    /// `usage_stats`: per key × model (hour and token 0), rows with a key only.
    private(set) var perKeyModel: [HourlyKey: Totals] = [:]
    /// The counters on `keys`, by key id.
    private(set) var perKey: [Int64: Totals] = [:]
    /// The counters on `client_tokens`, by token id.
    private(set) var perToken: [Int64: Totals] = [:]
    /// The rows that get a `chat_history` row, in order.
    private(set) var chatHistory: [UsageRow] = []

    /// The fold of `new` (rows the request log took as new: each counts once).
    init(_ new: [UsageRow]) {
        for row in new {
            let hour = (row.timestamp / 3_600_000) * 3600
            hourly[
                HourlyKey(hour: hour, keyID: row.keyID ?? 0, model: row.model ?? "", tokenID: row.tokenID ?? 0),
                default: Totals()
            ].add(row)
            if let keyID = row.keyID {
                perKey[keyID, default: Totals()].add(row)
                perKeyModel[HourlyKey(hour: 0, keyID: keyID, model: row.model ?? "", tokenID: 0), default: Totals()]
                    .add(row)
            }
            if let tokenID = row.tokenID { perToken[tokenID, default: Totals()].add(row) }
            if row.keepsChatHistory { chatHistory.append(row) }
        }
    }
}
