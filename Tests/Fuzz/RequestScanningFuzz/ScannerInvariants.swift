import RequestScanning

/// What must hold for any input to the scanners: ranges inside the input, rewriting that the same
/// scanners read back as asking for usage, usage found alike however the answer is split.
enum ScannerInvariants {
    static func check(_ input: UnsafeRawBufferPointer) {
        checkMembers(input)
        checkModel(input)
        checkStreamOptions(input)
        checkUsage(input)
        checkMultipart(input)
        _ = ErrorFields(input)
        _ = AnswerText.message(in: input)
        _ = AnswerText.delta(in: input)
        _ = StreamOptions.isUsageOnly(payload: input)
    }

    /// Member ranges lie inside the input, in order, each after the last.
    private static func checkMembers(_ input: UnsafeRawBufferPointer) {
        var scanner = JSONScanner(input)
        var previousEnd = 0
        try? scanner.forEachMember { name, value in
            precondition(name.range.lowerBound >= previousEnd && name.range.upperBound <= value.lowerBound)
            precondition(value.lowerBound < value.upperBound && value.upperBound <= input.count)
            previousEnd = value.upperBound
            return true
        }
        if let range = JSONScanner.valueRange(at: [.member("choices"), .first, .member("message")], in: input) {
            precondition(range.lowerBound >= 0 && range.upperBound <= input.count && !range.isEmpty)
        }
    }

    /// A model read from JSON is the decoded string at its member; JSON and "no content type" agree.
    private static func checkModel(_ input: UnsafeRawBufferPointer) {
        let model = RequestModelReader.read(input, contentType: "application/json")
        precondition(model == RequestModelReader.read(input, contentType: nil))
        if case .named(let name) = model {
            precondition(JSONScanner.string(at: [.member("model")], in: input) == name)
        }
    }

    /// A rewritten body asks for usage when read again, and still names the same model.
    private static func checkStreamOptions(_ input: UnsafeRawBufferPointer) {
        guard let edit = StreamOptions.requestingUsage(input) else { return }
        precondition(edit.range.lowerBound >= 0 && edit.range.upperBound <= input.count)
        var rewritten = Array(input)
        rewritten.replaceSubrange(edit.range, with: edit.replacement)
        rewritten.withUnsafeBytes { bytes in
            precondition(StreamOptions.requestingUsage(bytes) == nil, "rewriting did not take")
            precondition(
                JSONScanner.valueRange(at: [.member("stream_options"), .member("include_usage")], in: bytes)
                    .map { bytes[$0].elementsEqual("true".utf8) } == true)
            precondition(RequestModelReader.json(bytes) == RequestModelReader.json(input))
        }
    }

    /// The streaming reader finds the same usage whether the answer comes whole or in two parts.
    private static func checkUsage(_ input: UnsafeRawBufferPointer) {
        var whole = UsageReader()
        whole.consume(input)
        let expected = whole.finish()
        let split = input.isEmpty ? 0 : Int(input[0]) % (input.count + 1)
        var parts = UsageReader()
        parts.consume(UnsafeRawBufferPointer(rebasing: input[..<split]))
        parts.consume(UnsafeRawBufferPointer(rebasing: input[split...]))
        precondition(parts.finish() == expected)
        // On a whole, valid document without escapes it agrees with the scanner that reads documents whole.
        let valid = RequestModelReader.json(input).model
        if valid != .unreadable(.malformedJSON), valid != .unreadable(.tooDeep),
            !input.contains(UInt8(ascii: "\\"))
        {
            precondition(JSONScanner.usage(in: input) == expected, "usage readers disagree")
        }
    }

    /// Part ranges lie inside the input, in order, and a named model is a part's exact bytes.
    private static func checkMultipart(_ input: UnsafeRawBufferPointer) {
        let boundary = Array("b0und".utf8)
        var previousEnd = 0
        _ = MultipartForm.forEachPart(in: input, boundary: boundary) { _, content in
            precondition(content.lowerBound >= previousEnd && content.upperBound <= input.count)
            precondition(content.lowerBound <= content.upperBound)
            previousEnd = content.upperBound
            return true
        }
        _ = RequestModelReader.read(input, contentType: "multipart/form-data; boundary=\"b0und\"")
    }
}
