import HTTPServing
import NIOHTTP1
import Testing

@testable import ProxyWorker

/// Reading a list request's path and query as OpenAI reads them.
@Suite("Object list requests")
struct ObjectListRequestTests {
    private func reading(
        _ path: String, _ query: Substring? = nil, method: HTTPMethod = .GET
    )
        -> ObjectListRequest.Reading?
    {
        ObjectListRequest.read(method: method, segments: path.split(separator: "/"), query: query)
    }

    private func list(_ path: String, _ query: Substring? = nil) -> ObjectListRequest? {
        guard case .list(let list)? = reading(path, query) else { return nil }
        return list
    }

    private func param(_ path: String, _ query: Substring) -> String? {
        guard case .invalid(let error)? = reading(path, query) else { return nil }
        #expect(error.type == "invalid_request_error")
        return error.param
    }

    @Test("each recorded collection maps to its kind; other paths and methods are no list of records")
    func collections() {
        let kinds = [
            "files": "file", "batches": "batch", "vector_stores": "vector_store", "fine_tuning/jobs": "fine_tuning.job",
            "assistants": "assistant", "containers": "container", "evals": "eval",
        ]
        for (path, kind) in kinds {
            #expect(list(path)?.kind == kind, "\(path)")
            #expect(list(path)?.collection == path)
        }
        #expect(reading("files/file-1") == nil)
        #expect(reading("vector_stores/vs_1/files") == nil)
        #expect(reading("fine_tuning/jobs/ftjob-1/events") == nil)
        #expect(reading("threads/thread_1/messages") == nil)
        #expect(reading("responses") == nil)
        #expect(reading("fine_tuning") == nil)
        #expect(reading("files", method: .POST) == nil)
        #expect(reading("batches", method: .DELETE) == nil)
    }

    @Test("defaults: OpenAI's limit cut to a page of 100, newest first (evals oldest first), no cursor")
    func defaults() {
        #expect(
            list("files")
                == ObjectListRequest(
                    collection: "files", kind: "file", limit: 100, newestFirst: true, cursor: nil, purpose: nil))
        #expect(list("batches")?.limit == 20)
        #expect(list("evals")?.newestFirst == false)
    }

    @Test("limit, order, after, before and purpose are read where OpenAI has them")
    func parameters() {
        #expect(list("files", "limit=10000")?.limit == 100)
        #expect(
            list("files", "limit=2&order=asc&after=file-x&purpose=batch")
                == ObjectListRequest(
                    collection: "files", kind: "file", limit: 2, newestFirst: false, cursor: .after("file-x"),
                    purpose: "batch"))
        #expect(list("assistants", "before=asst_1&limit=5")?.cursor == .before("asst_1"))
        #expect(list("vector_stores", "after=vs_2&before=vs_1")?.cursor == .after("vs_2"))
        // Parameters a list does not have are ignored, as OpenAI ignores unknown ones.
        #expect(
            list("batches", "order=asc&before=batch_1&purpose=x")
                == ObjectListRequest(
                    collection: "batches", kind: "batch", limit: 20, newestFirst: true, cursor: nil, purpose: nil))
        #expect(list("files", "before=file-1")?.cursor == nil)
        #expect(list("files", "after=&x=1")?.cursor == nil)
    }

    @Test("a limit out of range or an unknown order is OpenAI's 400, naming the parameter")
    func invalid() {
        #expect(param("batches", "limit=0") == "limit")
        #expect(param("batches", "limit=101") == "limit")
        #expect(param("files", "limit=10001") == "limit")
        #expect(param("files", "limit=ten") == "limit")
        #expect(param("files", "order=newest") == "order")
        #expect(param("containers", "order=") == "order")
        #expect(list("vector_stores", "limit=100")?.limit == 100)
    }
}
