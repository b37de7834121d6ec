import Shared

/// One request-log row (`usage_log`) as `GET /api/usage` shows it: its row id and the row the collector
/// stored (the chat-history fields, which live in their own table, absent). Its fields read as the row's.
@dynamicMemberLookup
public struct UsageLogEntry: Sendable, Equatable {
    /// Row id.
    public var id: Int64
    /// What the request did.
    public var row: UsageRow

    /// An entry of `row`, stored as `id`.
    public init(id: Int64, row: UsageRow) {
        self.id = id
        self.row = row
    }

    /// The row's field at `field`.
    public subscript<Value>(dynamicMember field: KeyPath<UsageRow, Value>) -> Value {
        row[keyPath: field]
    }
}

/// Which request-log rows a page holds: every condition given must match (nil: any).
public struct UsageLogFilter: Sendable, Equatable {
    /// The upstream key.
    public var keyID: Int64?
    /// The client token.
    public var tokenID: Int64?
    /// The model asked for.
    public var model: String?
    /// The status answered.
    public var status: Int?
    /// First time included, Unix ms.
    public var from: Int64?
    /// First time excluded, Unix ms.
    public var to: Int64?

    /// A filter with the conditions given.
    public init(
        keyID: Int64? = nil, tokenID: Int64? = nil, model: String? = nil, status: Int? = nil, from: Int64? = nil,
        to: Int64? = nil
    ) {
        self.keyID = keyID
        self.tokenID = tokenID
        self.model = model
        self.status = status
        self.from = from
        self.to = to
    }
}
