import RequestScanning
import Testing

@Suite("Streaming usage reader")
struct UsageReaderTests {
    private func read(_ parts: [ArraySlice<UInt8>]) -> TokenUsage? {
        var reader = UsageReader()
        for part in parts { part.withUnsafeBytes { reader.consume($0) } }
        return reader.finish()
    }

    private let answers: [(String, TokenUsage?)] = [
        (
            #"{"id":"x","choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":999}","usage":{"prompt_tokens":7}}}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30,"prompt_tokens_details":{"cached_tokens":5}}}"#,
            TokenUsage(promptTokens: 21, completionTokens: 9, totalTokens: 30, cachedTokens: 5)
        ),
        (
            #" { "type" : "response.completed" , "response" : { "id" : "r", "output":[{"usage":{"input_tokens":8}}], "usage" : { "input_tokens" : 3 , "output_tokens" : 4 } } } "#,
            TokenUsage(promptTokens: 3, completionTokens: 4, totalTokens: 7)
        ),
        (#"{"usage":null,"x":{"usage":{"prompt_tokens":1}},"response":{}}"#, nil),
        (#"{"response":{},"x":{"usage":{"prompt_tokens":1}}}"#, nil),
        (#"[{"usage":{"prompt_tokens":1}},{"usage":{"prompt_tokens":2}}]"#, nil),
        (
            #"{"usage":{"prompt_tokens":2,"completion_tokens":3}"#,
            TokenUsage(promptTokens: 2, completionTokens: 3, totalTokens: 5)
        ),
        // Brackets, commas and quotes inside strings, both in what is stepped over and in the usage copied.
        (
            #"{"choices":[{"a":[1,{"b":"}]\"usage\":{"}],"c":"]"}],"usage":{"x":"},]\"","prompt_tokens":4,"d":[{"e":"}"}],"completion_tokens":1,"total_tokens":5},"z":"}"}"#,
            TokenUsage(promptTokens: 4, completionTokens: 1, totalTokens: 5)
        ),
        // A name that only ends in `usage` after an escape is not `usage`; one split anywhere still is.
        (
            #"{"\"usage":{"prompt_tokens":1},"usagex":{"prompt_tokens":2},"usage":{"total_tokens":6}}"#,
            TokenUsage(promptTokens: nil, completionTokens: nil, totalTokens: 6)
        ),
        (
            #"{"a":"\\","usage":{"total_tokens":5}}"#,
            TokenUsage(promptTokens: nil, completionTokens: nil, totalTokens: 5)
        ),
    ]

    @Test("the same usage is found however the answer is split, at every byte boundary")
    func everySplit() {
        for (answer, expected) in answers {
            let bytes = Array(answer.utf8)
            #expect(read([bytes[...]]) == expected, "\(answer)")
            #expect(read(bytes.map { [$0][...] }) == expected, "byte by byte: \(answer)")
            for split in 0...bytes.count {
                #expect(read([bytes[..<split], bytes[split...]]) == expected, "split at \(split): \(answer)")
            }
            // It agrees with the whole-document scanner on every one of these.
            #expect(bytes.withUnsafeBytes { JSONScanner.usage(in: $0) } == expected, "\(answer)")
        }
    }

    @Test("usage after megabytes of content is found, in constant memory; an oversized usage value is not")
    func largeAnswers() {
        let filler = String(repeating: "lorem ipsum [{\\\"usage\\\":1}] ", count: 300_000)
        let answer = Array(
            (#"{"choices":[{"message":{"content":""# + filler
                + #""}}],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}"#).utf8)
        #expect(answer.count > 6 << 20)
        var reader = UsageReader()
        var offset = 0
        while offset < answer.count {
            let end = min(answer.count, offset + 65_536)
            answer[offset..<end].withUnsafeBytes { reader.consume($0) }
            offset = end
        }
        #expect(reader.finish() == TokenUsage(promptTokens: 5, completionTokens: 6, totalTokens: 11))

        let padding = String(repeating: " ", count: UsageReader.captureLimit)
        let oversized = "{\"usage\":{\"prompt_tokens\":1," + padding + "\"total_tokens\":1}}"
        #expect(read([Array(oversized.utf8)[...]]) == nil)
    }
}
