import NIOCore
import NIOHTTP1
import RequestScanning
import Testing

@testable import ProxyWorker
@testable import Shared

/// Reading objects: the ids a request names (path, JSON body, multipart form), the object a create call's
/// answer names (JSON, or a Responses stream's `response.created`), and the change's line to the collector.
@Suite("Object reading")
struct ObjectReadingTests {
    private static func fields(_ body: String, contentType: String? = "application/json") -> RequestFields {
        Array(body.utf8).withUnsafeBytes { RequestModelReader.fields($0, contentType: contentType) }
    }

    @Test(
        "every object field of a JSON body is read: strings, arrays of strings, an object's id",
        arguments: [
            (#"{"model":"m","previous_response_id":"resp_1"}"#, ["resp_1"]),
            (#"{"input_file_id":"file-a","endpoint":"/v1/chat/completions"}"#, ["file-a"]),
            (#"{"file_id":"file-b"}"#, ["file-b"]),
            (#"{"file_ids":["file-c","file-d"]}"#, ["file-c", "file-d"]),
            (#"{"training_file":"file-t","validation_file":"file-v"}"#, ["file-t", "file-v"]),
            (#"{"vector_store_ids":["vs_1"]}"#, ["vs_1"]),
            (#"{"conversation":"conv_1"}"#, ["conv_1"]),
            (#"{"conversation":{"id":"conv_2"}}"#, ["conv_2"]),
            (#"{"container":"cntr_1"}"#, ["cntr_1"]),
            (#"{"file\u005fid":"file-escaped"}"#, ["file-escaped"]),
        ])
    func jsonFields(body: String, ids: [String]) {
        #expect(Self.fields(body).objectIDs == ids)
    }

    @Test(
        "fields inside the body's objects are read: tools, tool resources, message parts, attachments",
        arguments: [
            (
                #"{"model":"m","tools":[{"type":"file_search","vector_store_ids":["vs_a","vs_b"]}]}"#,
                ["vs_a", "vs_b"]
            ),
            (
                #"{"tool_resources":{"code_interpreter":{"file_ids":["file-1"]},"file_search":{"vector_store_ids":["vs_2"]}}}"#,
                ["file-1", "vs_2"]
            ),
            (
                #"{"input":[{"role":"user","content":[{"type":"input_file","file_id":"file-in"},{"type":"input_text","text":"hi"}]}]}"#,
                ["file-in"]
            ),
            (
                #"{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-chat"}}]}]}"#,
                ["file-chat"]
            ),
            (#"{"attachments":[{"file_id":"file-att","tools":[{"type":"file_search"}]}]}"#, ["file-att"]),
            (
                #"{"tools":[{"type":"code_interpreter","container":{"type":"auto","file_ids":["file-ci"]}}]}"#,
                ["file-ci"]
            ),
            (#"{"previous_response_id":"resp_top","tools":[{"container":"cntr_n"}]}"#, ["resp_top", "cntr_n"]),
            (#"{"a":{"b":{"file\u005fids":["file-esc"]}}}"#, ["file-esc"]),
        ])
    func nestedFields(body: String, ids: [String]) {
        #expect(Self.fields(body).objectIDs == ids)
    }

    @Test("other members and values that are not ids name nothing, at any depth")
    func jsonNothing() {
        #expect(
            Self.fields(#"{"model":"m","messages":[{"role":"user","content":"file_id"}],"stream":true}"#).objectIDs
                .isEmpty)
        #expect(Self.fields(#"{"file_id":7,"file_ids":[1,{"a":"b"}],"conversation":{"x":"y"}}"#).objectIDs.isEmpty)
        // A tool's JSON schema names `file_id` as a property: its value is an object, not an id.
        #expect(
            Self.fields(#"{"tools":[{"type":"function","parameters":{"properties":{"file_id":{"type":"string"}}}}]}"#)
                .objectIDs.isEmpty)
        let read = Self.fields(#"{"model":"gpt-x","previous_response_id":"resp_9","prompt_cache_key":"p"}"#)
        #expect(read.model == .named("gpt-x") && read.promptCacheKey == "p" && read.objectIDs == ["resp_9"])
    }

    @Test("fields nested in one another are each read once, and a malformed body after them is still refused")
    func nestedChain() {
        let mixed = Self.fields(#"{"file_ids":["file-x",{"file_id":"file-y"}]}"#).objectIDs
        #expect(Set(mixed) == ["file-x", "file-y"] && mixed.count == 2)
        let depth = 60
        let chain =
            String(repeating: #"{"c":{"file_id":"file-z","d":"#, count: depth) + "1"
            + String(repeating: "}}", count: depth)
        #expect(Self.fields(chain).objectIDs == Array(repeating: "file-z", count: depth))
        #expect(Self.fields(#"{"tools":[{"file_id":"file-q"}],"#).model == .unreadable(.malformedJSON))
    }

    @Test("multipart form fields are read, a repeated list part included, with the model in the same pass")
    func multipartFields() {
        let body =
            "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            + "--b\r\nContent-Disposition: form-data; name=\"file_id\"\r\n\r\nfile-m\r\n"
            + "--b\r\nContent-Disposition: form-data; name=\"file_ids[]\"\r\n\r\nfile-n\r\n"
            + "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b--\r\n"
        let read = Self.fields(body, contentType: "multipart/form-data; boundary=b")
        #expect(read.model == .named("whisper-1"))
        #expect(read.objectIDs == ["file-m", "file-n"])
    }

    @Test("every object field is read from a multipart form part of its name", arguments: ObjectReferences.fieldNames)
    func multipartField(name: String) {
        let body =
            "--b\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\nobj_\(name)\r\n"
            + "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nnot-an-id\r\n--b--\r\n"
        #expect(Self.fields(body, contentType: "multipart/form-data; boundary=b").objectIDs == ["obj_\(name)"])
    }

    @Test("the path's ids are looked up only under an object collection; create and delete calls are told apart")
    func paths() {
        #expect(ObjectPath.segments("/chat/completions") == nil)
        #expect(ObjectPath.segments("/embeddings") == nil)
        let segments = ObjectPath.segments("/files/file-1/content")
        #expect(segments == ["files", "file-1", "content"])
        #expect(Array(ObjectPath.candidateIDs(segments ?? [])) == ["file-1", "content"])
        func call(_ method: HTTPMethod, _ path: String) -> ObjectPath.Call? {
            ObjectPath.segments(path).flatMap { ObjectPath.call(method: method, segments: $0) }
        }
        for created in [
            "/files", "/uploads", "/batches", "/responses", "/conversations", "/vector_stores",
            "/vector_stores/vs_1/files", "/containers", "/containers/c_1/files", "/fine_tuning/jobs", "/assistants",
            "/threads", "/threads/runs", "/threads/t_1/runs", "/evals", "/evals/e_1/runs",
        ] {
            #expect(call(.POST, created) == .create, "\(created)")
        }
        #expect(call(.POST, "/batches/batch_1/cancel") == nil)
        #expect(call(.POST, "/responses/resp_1/cancel") == nil)
        #expect(call(.GET, "/files") == nil)
        #expect(call(.DELETE, "/files/file-1") == .delete(id: "file-1"))
        #expect(call(.DELETE, "/vector_stores/vs_1/files/file-1") == nil)
        #expect(call(.POST, "/chat/completions") == nil)
    }

    @Test("a create call's JSON answer has its id and object read in the usage pass, at every split")
    func jsonAnswer() {
        let answer = Array(
            #"{"id":"resp_abc","object":"response","output":[{"id":"msg_1","type":"message"}],"usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}"#
                .utf8)
        for split in 0...answer.count {
            var reader = UsageReader(readsObject: true)
            answer[..<split].withUnsafeBytes { reader.consume($0) }
            answer[split...].withUnsafeBytes { reader.consume($0) }
            #expect(reader.objectID == "resp_abc" && reader.objectKind == "response", "split at \(split)")
            #expect(reader.finish()?.totalTokens == 7, "split at \(split)")
        }
        // Usage first, object after: both are read. Nested ids are not the object's.
        var late = UsageReader(readsObject: true)
        let usageFirst =
            #"{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"data":{"id":"x"},"#
            + #""id":"batch_1","object":"batch"}"#
        Array(usageFirst.utf8).withUnsafeBytes { late.consume($0) }
        #expect(late.objectID == "batch_1" && late.objectKind == "batch")
        // Not asked: nothing is kept.
        var plain = UsageReader()
        Array(#"{"id":"file-1","object":"file"}"#.utf8).withUnsafeBytes { plain.consume($0) }
        #expect(plain.objectID == nil && plain.objectKind == nil)
    }

    @Test("a streamed Responses create names its response in the first response.created event")
    func streamedAnswer() {
        var sniffer = UsageSniffer(contentType: "text/event-stream", readsObject: true)
        let events =
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,"
            + "\"response\":{\"id\":\"resp_s\",\"object\":\"response\",\"status\":\"in_progress\"}}\n\n"
            + "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n"
        let bytes = Array(events.utf8)
        sniffer.consume(ByteBuffer(bytes: bytes[..<40]))
        sniffer.consume(ByteBuffer(bytes: bytes[40...]))
        #expect(sniffer.createdObject == CreatedObject(id: "resp_s", kind: "response"))
        var unasked = UsageSniffer(contentType: "text/event-stream")
        unasked.consume(ByteBuffer(bytes: bytes))
        #expect(unasked.createdObject == nil)
    }

    @Test("with usage recording off, a create call's answer is still read for its object")
    func usageOff() {
        var sniffer = UsageSniffer(contentType: "application/json", reads: false, readsObject: true)
        sniffer.consume(ByteBuffer(string: #"{"id":"file-off","object":"file","bytes":1}"#))
        #expect(sniffer.createdObject == CreatedObject(id: "file-off", kind: "file"))
    }

    @Test("an object change crosses the stats socket as one line, and back; lines that cannot be sent are not")
    func wire() {
        let object = StoredObject(id: "file-1", kind: "file", keyID: 3, tokenID: 4, createdAt: 5, expiresAt: 6)
        for change in [ObjectChange.created(object), .deleted(id: "file-1")] {
            let line = UsageWire.encode(change)
            #expect(line?.last == UInt8(ascii: "\n"))
            #expect(UsageWire.decodeRecord(Array(line?.dropLast() ?? [])) == .object(change))
        }
        var tabbed = object
        tabbed.id = "file\t1"
        #expect(UsageWire.encode(.created(tabbed)) == nil)
        #expect(UsageWire.decodeRecord(Array("o1\tc\tfile-1\tfile\tx\t4\t5\t6".utf8)) == nil)
        #expect(UsageWire.decodeRecord(Array("o1\tz\tfile-1".utf8)) == nil)
    }
}
