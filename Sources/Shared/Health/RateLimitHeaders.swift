/// Reads OpenAI's rate-limit headers: `x-ratelimit-remaining-requests` / `-tokens`, `x-ratelimit-reset-requests`
/// / `-tokens` (durations such as `1s`, `6m0s`, `20ms`), `retry-after` (seconds) and `retry-after-ms`.
public enum RateLimitHeaders {
    /// The figures in an answer's headers, or nil when it carries none; `header` looks a header up by
    /// its lowercase name.
    public static func state(now: Int64, header: (String) -> String?) -> RateLimitState? {
        let remainingRequests = header("x-ratelimit-remaining-requests").flatMap(integer)
        let remainingTokens = header("x-ratelimit-remaining-tokens").flatMap(integer)
        guard remainingRequests != nil || remainingTokens != nil else { return nil }
        return RateLimitState(
            remainingRequests: remainingRequests, remainingTokens: remainingTokens,
            resetRequestsAt: header("x-ratelimit-reset-requests").flatMap(milliseconds).map { now + $0 },
            resetTokensAt: header("x-ratelimit-reset-tokens").flatMap(milliseconds).map { now + $0 },
            observedAt: now)
    }

    /// How long a 429 asks to wait, in milliseconds: `retry-after-ms`, else `retry-after` (seconds), else
    /// the reset time of the budget that ran out; nil when the answer does not say.
    public static func retryAfterMs(header: (String) -> String?) -> Int64? {
        if let value = header("retry-after-ms").flatMap({ Double($0.trimmingWhitespace()) }), value.isFinite,
            value >= 0
        {
            return Int64(value.rounded(.up))
        }
        if let value = header("retry-after").flatMap({ Double($0.trimmingWhitespace()) }), value.isFinite, value >= 0 {
            return Int64((value * 1000).rounded(.up))
        }
        var wait: Int64?
        if header("x-ratelimit-remaining-requests").flatMap(integer) == 0 {
            wait = header("x-ratelimit-reset-requests").flatMap(milliseconds)
        }
        if header("x-ratelimit-remaining-tokens").flatMap(integer) == 0,
            let tokens = header("x-ratelimit-reset-tokens").flatMap(milliseconds)
        {
            wait = max(wait ?? 0, tokens)
        }
        return wait
    }

    /// `1s`, `6m0s`, `1h2m3.5s`, `20ms`, or a bare number of seconds → milliseconds.
    public static func milliseconds(_ text: String) -> Int64? {
        let text = text.trimmingWhitespace()
        if let seconds = Double(text) {
            return seconds.isFinite && seconds >= 0 ? Int64((seconds * 1000).rounded(.up)) : nil
        }
        var total = 0.0
        var number = ""
        var sawUnit = false
        var characters = Array(text)[...]
        while let character = characters.first {
            characters = characters.dropFirst()
            if character.isNumber || character == "." {
                number.append(character)
                continue
            }
            guard let value = Double(number) else { return nil }
            number = ""
            switch character {
            case "h": total += value * 3_600_000
            case "s": total += value * 1000
            case "m":
                if characters.first == "s" {
                    characters = characters.dropFirst()
                    total += value
                } else {
                    total += value * 60_000
                }
            default: return nil
            }
            sawUnit = true
        }
        guard sawUnit, number.isEmpty, total.isFinite else { return nil }
        return Int64(total.rounded(.up))
    }

    private static func integer(_ text: String) -> Int64? {
        Int64(text.trimmingWhitespace())
    }
}
