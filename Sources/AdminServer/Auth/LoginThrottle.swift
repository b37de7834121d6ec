import Synchronization

/// Counts failed admin logins (wrong login token or wrong bearer token) per client address: after
/// `limit` failures within `window` ms, wrong tokens from the address get 429 until the oldest failure ages
/// out. Successes neither pass nor reset it: the right token is always accepted.
final class LoginThrottle: Sendable {
    private let failures = Mutex<[String: [Int64]]>([:])
    /// Failures allowed per window.
    let limit: Int
    /// The window, in ms.
    let window: Int64

    /// A throttle allowing `limit` failures per `window` ms (5 per minute by default).
    init(limit: Int = 5, window: Int64 = 60_000) {
        self.limit = limit
        self.window = window
    }

    /// Seconds until `client` may try again, or nil when it may try now.
    func retryAfter(client: String, now: Int64) -> Int? {
        failures.withLock { failures in
            let recent = (failures[client] ?? []).filter { $0 > now - window }
            failures[client] = recent.isEmpty ? nil : recent
            guard recent.count >= limit, let oldest = recent.first else { return nil }
            return max(1, Int((oldest + window - now + 999) / 1000))
        }
    }

    /// Records a failure of `client` at `now`.
    func recordFailure(client: String, now: Int64) {
        failures.withLock { failures in
            var recent = (failures[client] ?? []).filter { $0 > now - window }
            recent.append(now)
            failures[client] = recent
        }
    }
}
