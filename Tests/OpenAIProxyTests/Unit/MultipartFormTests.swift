import RequestScanning
import Testing

@Suite("Multipart form reading")
struct MultipartFormTests {
    private func model(_ body: String, _ contentType: String = "multipart/form-data; boundary=XyZ") -> RequestModel {
        Array(body.utf8).withUnsafeBytes { RequestModelReader.read($0, contentType: contentType) }
    }

    private let audio =
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        + "RIFF--XyZ\n--XyZ\r-XyZ\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
        + "whisper-1\r\n--XyZ--\r\n"

    @Test("the model part's value is read, with a quoted or plain boundary")
    func readsModel() {
        #expect(model(audio) == .named("whisper-1"))
        #expect(model(audio, "Multipart/Form-Data; charset=utf-8; BOUNDARY=\"XyZ\"") == .named("whisper-1"))
        #expect(model("preamble\r\n" + audio) == .named("whisper-1"))
        #expect(
            model("--XyZ\r\ncontent-disposition: form-data; name=model\r\n\r\ngpt-image-1\r\n--XyZ--")
                == .named("gpt-image-1"))
        #expect(model("--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n--XyZ--\r\n") == .absent)
        #expect(model("--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\r\n--XyZ--") == .named(""))
    }

    @Test("a repeated model part is refused as a repeated JSON member is")
    func duplicate() {
        let twice =
            "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o-transcribe\r\n--XyZ--\r\n"
        #expect(model(twice) == .unreadable(.duplicateModel))
    }

    @Test("bodies that do not parse are unreadable, never a guess")
    func malformed() {
        #expect(model(audio, "multipart/form-data") == .unreadable(.malformedMultipart), "no boundary")
        #expect(model(audio, "multipart/form-data; boundary=XyZ; boundary=other") == .unreadable(.malformedMultipart))
        #expect(model(audio, "multipart/form-data; boundary=\"XyZ") == .unreadable(.malformedMultipart))
        #expect(model(audio, "multipart/form-data; boundary=Other") == .unreadable(.malformedMultipart))
        let bareNewlines = "--XyZ\nContent-Disposition: form-data; name=\"model\"\n\nwhisper-1\n--XyZ--\n"
        #expect(model(bareNewlines) == .unreadable(.malformedMultipart), "CR LF is required")
        let unclosed = "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
        #expect(model(unclosed) == .unreadable(.malformedMultipart), "the closing delimiter is missing")
        let starName = "--XyZ\r\nContent-Disposition: form-data; name*=utf-8''model\r\n\r\nx\r\n--XyZ--"
        #expect(model(starName) == .unreadable(.malformedMultipart))
        let noDisposition = "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"
        #expect(model(noDisposition) == .unreadable(.malformedMultipart))
        #expect(model(String(repeating: "-", count: 100_000)) == .unreadable(.malformedMultipart))
        // The delimiter may not occur in a part: where it does, readers may split differently, so no guess.
        let lookalike =
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nRIFF\r\n--XyZZ\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ--\r\n"
        #expect(model(lookalike) == .unreadable(.malformedMultipart))
    }

    @Test("other content types with a body are unreadable; JSON and none are read as JSON")
    func contentTypes() {
        let bytes = Array(#"{"model":"m"}"#.utf8)
        bytes.withUnsafeBytes { body in
            #expect(RequestModelReader.read(body, contentType: nil) == .named("m"))
            #expect(RequestModelReader.read(body, contentType: "application/json; charset=utf-8") == .named("m"))
            #expect(RequestModelReader.read(body, contentType: "Application/vnd.api+JSON") == .named("m"))
            #expect(RequestModelReader.read(body, contentType: "text/plain") == .unreadable(.unknownContentType))
            #expect(RequestModelReader.read(body, contentType: "jso") == .unreadable(.unknownContentType))
            #expect(RequestModelReader.read(body, contentType: "") == .unreadable(.unknownContentType))
            #expect(
                RequestModelReader.read(body, contentType: "application/x-www-form-urlencoded")
                    == .unreadable(.unknownContentType))
        }
        #expect([UInt8]().withUnsafeBytes { RequestModelReader.read($0, contentType: "text/plain") } == .absent)
    }
}
