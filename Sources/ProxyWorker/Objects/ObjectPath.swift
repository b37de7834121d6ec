import NIOHTTP1

/// What a request's path (below `/v1`) says about stored objects: which of its segments may be object ids, and
/// whether it creates or deletes one. Paths outside the object collections (`/chat/completions`,
/// `/embeddings` …) are told apart by their first segment alone, without allocating.
enum ObjectPath {
    /// What a request does to the objects the gateway records.
    enum Call: Equatable {
        /// A create call (`POST` to a collection): a 2xx answer's top-level `id` and `object` name a new object.
        case create
        /// `DELETE /{collection}/{id}`: a 2xx answer removes the object's record.
        case delete(id: String)
    }

    /// Whether `segment` is a collection of stored objects.
    static func isCollection(_ segment: Substring) -> Bool {
        switch segment {
        case "files", "uploads", "batches", "responses", "conversations", "vector_stores", "containers",
            "fine_tuning", "assistants", "threads", "evals":
            return true
        default:
            return false
        }
    }

    /// The segments of `path` when its first one is an object collection; nil for every other path.
    static func segments(_ path: String) -> [Substring]? {
        // On the UTF-8 bytes: every request passes here, and stepping over characters costs more.
        let bytes = path.utf8
        var start = bytes.startIndex
        if start != bytes.endIndex, bytes[start] == UInt8(ascii: "/") { bytes.formIndex(after: &start) }
        let firstEnd = bytes[start...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex
        guard isCollection(path[start..<firstEnd]) else { return nil }
        return path[start...].split(separator: "/")
    }

    /// The segments of `segments` that may name an object: all after the collection (the ones that name none,
    /// such as `content` or `cancel`, are simply not found).
    static func candidateIDs(_ segments: [Substring]) -> ArraySlice<Substring> {
        segments.dropFirst()
    }

    /// The prefixes of the ids OpenAI gives the objects the gateway records (`file-…`, `resp_…` …).
    private static let idPrefixes: [Substring] = [
        "file-", "batch_", "resp_", "vs_", "vsfb_", "conv_", "upload_", "ftjob-", "asst_", "thread_", "run_",
        "msg_", "cntr_", "cfile_", "eval_", "evalrun_",
    ]

    /// Whether `id` has the shape of an id of a recorded kind, so that a miss in memory is worth a look in the
    /// database; path words such as `content` or `cancel`, and other providers' ids, are not.
    static func looksLikeObjectID(_ id: Substring) -> Bool {
        id.utf8.count > 6 && idPrefixes.contains { id.hasPrefix($0) }
    }

    /// Sub-collections a `POST /{collection}/{id}/{sub}` creates an object in.
    private static func isSubCollection(_ segment: Substring) -> Bool {
        switch segment {
        case "files", "file_batches", "runs", "messages": return true
        default: return false
        }
    }

    /// What a request with `method` on a path of `segments` does to objects; nil when it creates or deletes
    /// none that is recorded.
    static func call(method: HTTPMethod, segments: [Substring]) -> Call? {
        switch method {
        case .POST:
            switch segments.count {
            case 1: return segments[0] == "fine_tuning" ? nil : .create
            case 2:
                let created =
                    (segments[0] == "fine_tuning" && segments[1] == "jobs")
                    || (segments[0] == "threads" && segments[1] == "runs")
                return created ? .create : nil
            case 3: return isSubCollection(segments[2]) ? .create : nil
            default: return nil
            }
        case .DELETE:
            // Only an object itself: `DELETE /vector_stores/{id}/files/{file}` detaches a file (whose
            // `vector_store.file` shares the file's id), it does not delete it.
            guard segments.count == 2, segments[0] != "fine_tuning" else { return nil }
            return .delete(id: String(segments[1]))
        default:
            return nil
        }
    }
}
