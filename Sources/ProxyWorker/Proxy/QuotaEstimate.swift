import NIOCore
import RequestScanning

/// What a request of a client token with a quota reserves against it while in flight: the prompt at
/// about four bytes of body per token (as the stream estimate counts it), plus the completion the
/// request allows itself (`max_completion_tokens`, `max_tokens` or `max_output_tokens`), else
/// `defaultCompletionTokens`.
enum QuotaEstimate {
    /// Completion tokens reserved when the request sets no limit of its own.
    static let defaultCompletionTokens: Int64 = 1024
    /// The most a request's own limit is believed: a larger number cannot be a real completion.
    static let largestCompletionTokens: Int64 = 1_000_000

    /// The names a request limits its completion with, in the order they are looked for.
    static let limitFields = ["max_completion_tokens", "max_tokens", "max_output_tokens"]

    /// The tokens to reserve for a request of `requestBytes` bytes whose completion limit is `limit`.
    static func tokens(requestBytes: Int, completionLimit limit: Int64?) -> Int64 {
        let prompt = Int64((requestBytes + 3) / 4)
        let completion = limit.map { min(max(0, $0), largestCompletionTokens) } ?? defaultCompletionTokens
        return prompt + completion
    }

    /// The request body's completion limit, when it sets one as a top-level integer.
    static func completionLimit(in body: ByteBuffer) -> Int64? {
        guard body.readableBytes > 0 else { return nil }
        return body.withUnsafeReadableBytes { bytes -> Int64? in
            for field in limitFields {
                guard let range = JSONScanner.valueRange(at: [.member(field)], in: bytes) else { continue }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                if let value = Int64(text) { return value }
            }
            return nil
        }
    }
}
