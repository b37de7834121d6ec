/// Why a request was refused before any client token was known: such requests are counted per minute,
/// never stored one row each (a flood of them would otherwise fill the request log).
public enum RefusalReason: String, Sendable, CaseIterable {
    /// No `Authorization: Bearer …` header.
    case missingToken = "missing_token"
    /// A bearer token that is not an active client token.
    case invalidToken = "invalid_token"
    /// A path outside `/v1` (and not `/healthz`).
    case unknownPath = "unknown_path"
}

/// How many requests one worker process refused for one reason in one minute, as sent to the collector.
///
/// The count is the running total of that minute, not an increment: a record sent again (after a
/// reconnect, from the spool) or overtaken by a later one of the same minute changes nothing, so the
/// collector keeps the largest count it saw per minute, reason and source.
public struct RefusedCount: Sendable, Equatable, Hashable {
    /// The worker process that counted (unique per process start).
    public var source: String
    /// Start of the minute, in Unix milliseconds.
    public var minute: Int64
    /// Why the requests were refused.
    public var reason: RefusalReason
    /// Requests refused in that minute so far.
    public var count: Int64

    /// A record with every field given.
    public init(source: String, minute: Int64, reason: RefusalReason, count: Int64) {
        self.source = source
        self.minute = minute
        self.reason = reason
        self.count = count
    }

    /// The start of the minute holding `milliseconds` (Unix).
    public static func minute(of milliseconds: Int64) -> Int64 {
        milliseconds - milliseconds % 60_000
    }
}
