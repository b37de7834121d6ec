import Foundation
import RequestScanning

/// Decides what an upstream answer says about the key that was used, from its status, headers and (for
/// error statuses) its body.
public enum UpstreamVerdict {
    /// Whether an answer with `status` may be a key failure, so its body must be read before anything
    /// reaches the client. Everything else is passed through as it arrives.
    public static func mayBeKeyFailure(status: Int) -> Bool {
        status == 401 || status == 402 || status == 403 || status == 408 || status == 429 || status >= 500
    }

    /// The outcome for the key. The request's own errors (400, 404, 413, 422 …, and the 401s and 403s of
    /// `blamesRequest`) are `.success` for the key: they go back to the client as they are.
    public static func outcome(status: Int, body: [UInt8], header: (String) -> String?) -> KeyOutcome {
        guard mayBeKeyFailure(status: status) else { return .success }
        let error = ErrorFields(body)
        switch status {
        case 401, 403:
            // A refusal that blames the request (its headers, its model, the gateway's region) is the client's.
            if blamesRequest(error) { return .success }
            return .refused(status: status, message: error.summary)
        case 402:
            return .quotaExhausted(message: error.summary)
        case 429:
            if error.code == "insufficient_quota" || error.type == "insufficient_quota" {
                return .quotaExhausted(message: error.summary)
            }
            return .rateLimited(retryAfterMs: RateLimitHeaders.retryAfterMs(header: header))
        default:
            return .transient(status: status, reason: "upstream answered \(status)")
        }
    }

    /// The `error` object of an OpenAI error body, as far as it parses.
    struct ErrorFields {
        var message: String?
        var type: String?
        var code: String?

        init(_ body: [UInt8]) {
            let fields = body.withUnsafeBytes { RequestScanning.ErrorFields($0) }
            message = fields.message
            type = fields.type
            code = fields.code
        }

        /// A short, single-line account for reasons and logs.
        var summary: String {
            let text = (message ?? code ?? type ?? "no error message").split(whereSeparator: \.isNewline)
                .joined(separator: " ")
            return text.count > 200 ? String(text.prefix(200)) + "…" : text
        }
    }
}
