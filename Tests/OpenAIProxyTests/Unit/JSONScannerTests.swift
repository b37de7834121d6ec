import RequestScanning
import Testing

@Suite("JSON scanner")
struct JSONScannerTests {
    private func model(_ json: String) -> RequestModel {
        Array(json.utf8).withUnsafeBytes { RequestModelReader.json($0).model }
    }

    private func usage(_ json: String) -> TokenUsage? {
        Array(json.utf8).withUnsafeBytes { JSONScanner.usage(in: $0) }
    }

    @Test("the top-level model is found past nested values, escaped strings and arrays")
    func topLevelModel() {
        #expect(model(#"{"model":"gpt-4o"}"#) == .named("gpt-4o"))
        #expect(
            model(
                #" { "messages" : [ {"role":"user","content":"say \"model\": x","model":"inner"} ], "model" : "gpt-4o-mini" } "#
            ) == .named("gpt-4o-mini"))
        #expect(model(#"{"n":-1.5e3,"ok":true,"none":null,"nested":{"model":"inner"},"model":"m"}"#) == .named("m"))
        #expect(model(#"{"nested":{"model":"inner"}}"#) == .absent, "only top-level members count")
        #expect(model(#"{"model":42}"#) == .unreadable(.modelNotString))
        #expect(model(#"["model","x"]"#) == .unreadable(.malformedJSON))
        #expect(model(#"{"model":"#) == .unreadable(.malformedJSON))
        #expect(model(#"{"a":"unterminated"#) == .unreadable(.malformedJSON))
        #expect(model(#"{"model":"m"} trailing"#) == .unreadable(.malformedJSON))
        #expect(model(#"{"n":01x,"model":"m"}"#) == .unreadable(.malformedJSON))
        #expect(model(#"{"a":tru,"model":"m"}"#) == .unreadable(.malformedJSON))
        #expect(model(#"{"a":[1,],"model":"m"}"#) == .unreadable(.malformedJSON))
        #expect(model("") == .unreadable(.malformedJSON))
    }

    @Test("escapes are decoded as the upstream decodes them, in values and in member names")
    func escapes() {
        #expect(model(#"{"model":"gpt\u002d4o"}"#) == .named("gpt-4o"))
        #expect(model(#"{"mod\u0065l":"gpt-4o"}"#) == .named("gpt-4o"))
        #expect(model(#"{"model":"a\"b\\c\/d\n"}"#) == .named("a\"b\\c/d\n"))
        #expect(model(#"{"model":"\ud83d\ude00"}"#) == .named("😀"))
        #expect(model(#"{"model":"\ud83d"}"#) == .unreadable(.modelNotString), "a lone surrogate is no text")
        #expect(model(#"{"model":"\x"}"#) == .unreadable(.modelNotString))
    }

    @Test("a repeated top-level model is refused, however it is written")
    func duplicates() {
        #expect(model(#"{"model":"gpt-test","model":"gpt-4o"}"#) == .unreadable(.duplicateModel))
        #expect(model(#"{"model":"gpt-test","x":{"model":"a"},"mod\u0065l":"gpt-4o"}"#) == .unreadable(.duplicateModel))
        #expect(model(#"{"model":"a","m":{"model":"b","model":"c"}}"#) == .named("a"), "nested repeats are not ours")
    }

    @Test("a million brackets give a clear result, not a crash; 128 levels still read")
    func deepNesting() {
        let deep = "{\"x\":" + String(repeating: "[", count: 1_000_000)
        #expect(model(deep) == .unreadable(.tooDeep))
        let deepObjects = "{\"x\":" + String(repeating: "{\"a\":", count: 1_000_000)
        #expect(model(deepObjects) == .unreadable(.tooDeep))
        #expect(usage(deep) == nil)
        // The top-level object is level 1: 127 arrays inside it make 128.
        let limit =
            "{\"model\":\"m\",\"x\":" + String(repeating: "[", count: 127) + String(repeating: "]", count: 127) + "}"
        #expect(model(limit) == .named("m"))
        let over =
            "{\"model\":\"m\",\"x\":" + String(repeating: "[", count: 128) + String(repeating: "]", count: 128) + "}"
        #expect(model(over) == .unreadable(.tooDeep))
        let deepMultipart = Array(deep.utf8).withUnsafeBytes { StreamOptions.requestingUsage($0) }
        #expect(deepMultipart == nil)
    }

    @Test("usage counts are read from the top level or from response.usage, with their details")
    func usageCounts() {
        #expect(
            usage(
                #"{"choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":999}"}}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30,"prompt_tokens_details":{"cached_tokens":5}}}"#
            )
                == TokenUsage(promptTokens: 21, completionTokens: 9, totalTokens: 30, cachedTokens: 5))
        #expect(
            usage(#"{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":3,"output_tokens":4}}}"#)
                == TokenUsage(promptTokens: 3, completionTokens: 4, totalTokens: 7))
        #expect(
            usage(#"{"usage":{"prompt_tokens":4,"total_tokens":4}}"#)
                == TokenUsage(promptTokens: 4, completionTokens: nil, totalTokens: 4))
        #expect(usage(#"{"usage":null}"#) == nil)
        #expect(usage(#"{"usage":{}}"#) == nil)
        #expect(usage(#"{"usage":{"prompt_tokens":"many"}}"#) == nil)
        #expect(usage(#"{"usage":{"prompt_tokens":99999999999999999999999}}"#) == nil)
        #expect(usage(#"{"data":{"usage":{"prompt_tokens":1}}}"#) == nil, "usage elsewhere is not the answer's")
        #expect(usage(#"{"usage":{"prompt_tokens":1"#) == nil, "truncated input gives nothing")
        #expect(usage("[DONE]") == nil)
    }

    @Test("error fields and answer text are read without a JSON tree")
    func errorFieldsAndText() {
        let error = Array(#"{"error":{"message":"bad \"key\"","type":"invalid_request_error","code":null}}"#.utf8)
        let fields = error.withUnsafeBytes { ErrorFields($0) }
        #expect(fields.message == "bad \"key\"" && fields.type == "invalid_request_error" && fields.code == nil)
        let deep = Array(("{\"error\":" + String(repeating: "[", count: 1_000_000)).utf8)
        #expect(deep.withUnsafeBytes { ErrorFields($0) }.message == nil)

        func message(_ text: String) -> String? { Array(text.utf8).withUnsafeBytes { AnswerText.message(in: $0) } }
        func delta(_ text: String) -> String? { Array(text.utf8).withUnsafeBytes { AnswerText.delta(in: $0) } }
        #expect(message(#"{"choices":[{"message":{"role":"assistant","content":"hi \u00e9"}},{"x":1}]}"#) == "hi é")
        #expect(message(#"{"output_text":"out","choices":[]}"#) == "out")
        #expect(message(#"{"choices":[{"text":"done"}]}"#) == "done")
        #expect(message(#"{"choices":[]}"#) == nil)
        #expect(delta(#" {"choices":[{"delta":{"content":"a"}}]}"#) == "a")
        #expect(delta(#"{"type":"response.output_text.delta","delta":"b"}"#) == "b")
        #expect(delta("[DONE]") == nil)
    }
}
