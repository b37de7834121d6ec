import RequestScanning
import Testing

@Suite("Stream options rewriting")
struct StreamOptionsTests {
    private func rewrite(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard let edit = bytes.withUnsafeBytes({ StreamOptions.requestingUsage($0) }) else { return nil }
        var rewritten = bytes
        rewritten.replaceSubrange(edit.range, with: edit.replacement)
        return String(decoding: rewritten, as: UTF8.self)
    }

    @Test("a streamed request is made to ask for usage, every other byte kept")
    func rewrites() {
        #expect(rewrite(#" {"stream":true}"#) == #" {"stream_options":{"include_usage":true},"stream":true}"#)
        #expect(
            rewrite(#"{"stream":true,"stream_options":{"include_usage":false,"x":1}}"#)
                == #"{"stream":true,"stream_options":{"include_usage":true,"x":1}}"#)
        #expect(
            rewrite(#"{"stream":true,"stream_options":{ }}"#)
                == #"{"stream":true,"stream_options":{"include_usage":true }}"#)
        #expect(
            rewrite(#"{"stream":true,"stream_options":{"x":[1]}}"#)
                == #"{"stream":true,"stream_options":{"include_usage":true,"x":[1]}}"#)
        #expect(
            rewrite(#"{"stream":true,"stream_options":{"include_usage":null}}"#)
                == #"{"stream":true,"stream_options":{"include_usage":true}}"#)
    }

    @Test("nothing changes when not streamed, already asking, or not readable")
    func leavesAlone() {
        #expect(rewrite(#"{"model":"m","stream":false}"#) == nil)
        #expect(rewrite(#"{"model":"m"}"#) == nil)
        #expect(rewrite(#"{"stream":true,"stream_options":{"include_usage":true}}"#) == nil)
        #expect(rewrite(#"{"stream":true,"stream_options":null}"#) == nil)
        #expect(rewrite("not json \"stream\"") == nil)
        #expect(rewrite(#"{"stream":true"#) == nil)
        #expect(rewrite("{\"stream\":true,\"x\":" + String(repeating: "[", count: 1_000_000)) == nil)
    }

    @Test("a usage-only event is told from the others")
    func usageOnly() {
        func check(_ text: String) -> Bool {
            Array(text.utf8).withUnsafeBytes { StreamOptions.isUsageOnly(payload: $0) }
        }
        #expect(check(#" {"choices":[ ],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#))
        #expect(!check(#"{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1}}"#))
        #expect(!check(#"{"choices":[],"usage":null}"#))
        #expect(!check(#"{"usage":{"prompt_tokens":1}}"#))
        #expect(!check("{\"choices\":[]," + String(repeating: "[", count: 1_000_000)))
    }
}
