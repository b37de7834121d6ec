import Testing

@testable import ProxyWorker

@Suite("JSON scanner")
struct JSONScannerTests {
    private func model(_ json: String) -> String? {
        Array(json.utf8).withUnsafeBytes { JSONScanner.topLevelString("model", in: $0) }
    }

    private func usage(_ json: String) -> TokenUsage? {
        Array(json.utf8).withUnsafeBytes { JSONScanner.usage(in: $0) }
    }

    @Test("the top-level model is found past nested values, escaped strings and arrays")
    func topLevelModel() {
        #expect(model(#"{"model":"gpt-4o"}"#) == "gpt-4o")
        #expect(
            model(
                #" { "messages" : [ {"role":"user","content":"say \"model\": x","model":"inner"} ], "model" : "gpt-4o-mini" } "#
            ) == "gpt-4o-mini")
        #expect(model(#"{"n":-1.5e3,"ok":true,"none":null,"nested":{"model":"inner"},"model":"m"}"#) == "m")
        #expect(model(#"{"nested":{"model":"inner"}}"#) == nil, "only top-level members count")
        #expect(model(#"{"model":42}"#) == nil)
        #expect(model(#"{"model":"a\"b"}"#) == nil, "escaped strings are not guessed")
        #expect(model(#"["model","x"]"#) == nil)
        #expect(model(#"{"model":"#) == nil)
        #expect(model(#"{"a":"unterminated"#) == nil)
        #expect(model("") == nil)
    }

    @Test("usage counts are read from the top level or from response.usage, ignoring nested details")
    func usageCounts() {
        #expect(
            usage(
                #"{"choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":999}"}}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30,"prompt_tokens_details":{"cached_tokens":5}}}"#
            )
                == TokenUsage(promptTokens: 21, completionTokens: 9, totalTokens: 30))
        #expect(
            usage(#"{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":3,"output_tokens":4}}}"#)
                == TokenUsage(promptTokens: 3, completionTokens: 4, totalTokens: 7))
        #expect(
            usage(#"{"usage":{"prompt_tokens":4,"total_tokens":4}}"#)
                == TokenUsage(promptTokens: 4, completionTokens: nil, totalTokens: 4))
        #expect(usage(#"{"usage":null}"#) == nil)
        #expect(usage(#"{"usage":{}}"#) == nil)
        #expect(usage(#"{"usage":{"prompt_tokens":"many"}}"#) == nil)
        #expect(usage(#"{"data":{"usage":{"prompt_tokens":1}}}"#) == nil, "usage elsewhere is not the answer's")
        #expect(usage(#"{"usage":{"prompt_tokens":1"#) == nil, "truncated input gives nothing")
        #expect(usage("[DONE]") == nil)
    }
}
