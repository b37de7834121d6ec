import HTTPServing
import NIOHTTP1

/// A list request on a collection of recorded objects (`GET /v1/files`, `/v1/batches` …) and its parameters as
/// OpenAI reads them. The gateway answers it from the client token's own records, never from one key's account.
struct ObjectListRequest: Equatable {
    /// Where a page starts: after an object, or before one (the previous page).
    enum Cursor: Equatable {
        case after(String)
        case before(String)
    }

    /// The collection's path below `/v1`, without the leading slash (`files`, `fine_tuning/jobs`).
    let collection: String
    /// The `object` kind its records carry (`file`, `fine_tuning.job`).
    let kind: String
    /// The most objects in the page (OpenAI's limit, cut to `pageLimit`).
    let limit: Int
    /// Newest first, as OpenAI lists by default; false for `order=asc`.
    let newestFirst: Bool
    /// The page's cursor, if any.
    let cursor: Cursor?
    /// Files only: the `purpose` every listed file must have.
    let purpose: String?

    /// What a request's path and query say: a list, or a parameter OpenAI would refuse.
    enum Reading: Equatable {
        case list(ObjectListRequest)
        case invalid(ErrorBody)
    }

    /// The most objects one page of the gateway holds: each is fetched from its key, so a page stays small; a
    /// client asking more (files allow 10,000) gets `has_more` and pages on with `after`.
    static let pageLimit = 100

    /// What OpenAI accepts on one collection's list.
    private struct Collection {
        let kind: String
        let defaultLimit: Int
        let maximumLimit: Int
        /// Nil where the list has no `order` (it is always newest first).
        let defaultNewestFirst: Bool?
        let hasBefore: Bool
        let hasPurpose: Bool
    }

    /// The collections listed from records, by their path below `/v1`.
    private static func collection(_ segments: [Substring]) -> Collection? {
        switch segments.count {
        case 1:
            switch segments[0] {
            case "files":
                return Collection(
                    kind: "file", defaultLimit: 10_000, maximumLimit: 10_000, defaultNewestFirst: true,
                    hasBefore: false, hasPurpose: true)
            case "batches":
                return Collection(
                    kind: "batch", defaultLimit: 20, maximumLimit: 100, defaultNewestFirst: nil, hasBefore: false,
                    hasPurpose: false)
            case "vector_stores":
                return Collection(
                    kind: "vector_store", defaultLimit: 20, maximumLimit: 100, defaultNewestFirst: true,
                    hasBefore: true, hasPurpose: false)
            case "assistants":
                return Collection(
                    kind: "assistant", defaultLimit: 20, maximumLimit: 100, defaultNewestFirst: true, hasBefore: true,
                    hasPurpose: false)
            case "containers":
                return Collection(
                    kind: "container", defaultLimit: 20, maximumLimit: 100, defaultNewestFirst: true,
                    hasBefore: false, hasPurpose: false)
            case "evals":
                return Collection(
                    kind: "eval", defaultLimit: 20, maximumLimit: 100, defaultNewestFirst: false, hasBefore: false,
                    hasPurpose: false)
            default:
                return nil
            }
        case 2 where segments[0] == "fine_tuning" && segments[1] == "jobs":
            return Collection(
                kind: "fine_tuning.job", defaultLimit: 20, maximumLimit: 100, defaultNewestFirst: nil,
                hasBefore: false, hasPurpose: false)
        default:
            return nil
        }
    }

    /// The list a request with `method` on the object path `segments` and `query` asks for: nil when it is no
    /// list of a recorded collection; OpenAI's 400 when a parameter is out of range.
    static func read(
        method: HTTPMethod, segments: [Substring], query: Substring?
    ) -> Reading? {
        guard method == .GET, let collection = collection(segments) else { return nil }
        var limit = collection.defaultLimit
        var newestFirst = collection.defaultNewestFirst ?? true
        var cursor: Cursor?
        var purpose: String?
        for pair in (query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0]
            let value = parts.count > 1 ? String(parts[1]) : ""
            switch name {
            case "limit":
                guard let number = Int(value), number >= 1, number <= collection.maximumLimit else {
                    return .invalid(
                        invalid(
                            "Invalid 'limit': expected an integer from 1 to \(collection.maximumLimit), got '\(value)'.",
                            param: "limit"))
                }
                limit = number
            case "order" where collection.defaultNewestFirst != nil:
                switch value {
                case "desc": newestFirst = true
                case "asc": newestFirst = false
                default:
                    return .invalid(
                        invalid("Invalid 'order': expected one of 'asc' or 'desc', got '\(value)'.", param: "order"))
                }
            case "after" where !value.isEmpty:
                cursor = .after(value)
            case "before" where collection.hasBefore && !value.isEmpty:
                if cursor == nil { cursor = .before(value) }
            case "purpose" where collection.hasPurpose && !value.isEmpty:
                purpose = value
            default:
                continue
            }
        }
        return .list(
            ObjectListRequest(
                collection: segments.joined(separator: "/"), kind: collection.kind, limit: min(limit, pageLimit),
                newestFirst: newestFirst, cursor: cursor, purpose: purpose))
    }

    private static func invalid(_ message: String, param: String) -> ErrorBody {
        ErrorBody(message: message, type: "invalid_request_error", param: param, code: "invalid_value")
    }
}
