import NIOHTTP1
import Testing

@testable import ProxyWorker

/// Header names (and values such as `keep-alive`) matched bytewise on the hot path.
@Suite("Header names")
struct HeaderNameTests {
    @Test("header names match bytewise in any ASCII case, and only at the same length")
    func names() {
        #expect(HeaderName.matches("Content-Length", "content-length"))
        #expect(HeaderName.matches("TRANSFER-ENCODING", "transfer-encoding"))
        #expect(!HeaderName.matches("content-length ", "content-length"))
        #expect(!HeaderName.matches("content_length", "content-length"))
        #expect(!HeaderName.matches("", "expect"))
        #expect(HeaderName.matches("Keep-Alive", "keep-alive") && !HeaderName.matches("keep-alive, x", "keep-alive"))
    }
}
