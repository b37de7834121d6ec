import Foundation
import NIOHTTP1
import Testing

@testable import ProxyWorker

@Suite("Nothing that names the pool's keys or accounts crosses the proxy")
struct KeyExposureTests {
    private let key = "sk-proj-Q7vXk9mZ2pLr4TnW8yBcD3fGwxyz"

    private func scrub(_ text: String, key: String? = nil) -> String? {
        KeyScrubber.scrubbed(Array(text.utf8), servingKey: key ?? self.key).map { String(decoding: $0, as: UTF8.self) }
    }

    private func error(_ json: String?) -> [String: String]? {
        guard let json, let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        else { return nil }
        return (object["error"] as? [String: Any])?.compactMapValues { $0 as? String }
    }

    @Test("OpenAI's masked key in a 401 becomes ***; the JSON keeps its shape, code and type")
    func maskedKey() throws {
        let body =
            #"{"error":{"message":"Incorrect API key provided: sk-proj-********************************************wxyz. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
        let scrubbed = try #require(scrub(body))
        let fields = try #require(error(scrubbed))
        #expect(
            fields["message"]
                == "Incorrect API key provided: ***. You can find your API key at https://platform.openai.com/account/api-keys."
        )
        #expect(fields["code"] == "invalid_api_key")
        #expect(fields["type"] == "invalid_request_error")
        #expect(!scrubbed.contains("wxyz"))
    }

    @Test("any 4+ character run of the serving key's secret becomes *s; its well-known prefix and words stay")
    func fragments() throws {
        let body = #"{"error":{"message":"key ending in Gwxyz for project X; also 2pLr4T and proj-ect","code":"x"}}"#
        let scrubbed = try #require(scrub(body))
        #expect(error(scrubbed)?["message"] == "key ending in ***** for project X; also ****** and proj-ect")
        for start in 0...(key.count - 4) {
            let fragment = String(Array(key)[start..<(start + 4)])
            if fragment.contains("sk-") || fragment.contains("proj") || fragment.contains("j-")
                || fragment.contains("k-p")
            {
                continue
            }
            #expect(!scrubbed.contains(fragment), "\(fragment)")
        }
        // Object names are never rewritten, even when they match.
        #expect(scrub(#"{"Q7vXk":"a"}"#) == nil)
    }

    @Test("organization and project ids and other sk- tokens go; sk- inside a word, and clean bodies, stay")
    func ids() throws {
        let body =
            #"{"error":{"message":"Project `proj_JMo3Q9spNIEWhSxusokLegJY` of org-ubsawDRy4AbBC9m8 does not have access to model `gpt-4.1`; key sk-abc...ZXY","code":"model_not_found"}}"#
        #expect(
            error(scrub(body))?["message"] == "Project `***` of *** does not have access to model `gpt-4.1`; key ***")
        #expect(error(scrub(#"{"error":{"message":"bad sk-ab…YZ1.","code":"x"}}"#))?["message"] == "bad ***.")
        #expect(scrub(#"{"error":{"message":"disk-io and task-force are fine","code":"x"}}"#) == nil)
        #expect(scrub(#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#) == nil)
        #expect(scrub("") == nil)
        // A body that is not JSON is rewritten throughout.
        #expect(scrub("<html>bad key sk-live-123 Q7vXk9</html>") == "<html>bad key *** ******</html>")
    }

    @Test("OpenAI-Organization and OpenAI-Project are not taken from clients; cookies and account headers not given")
    func headers() {
        let client = HTTPHeaders([
            ("Authorization", "Bearer client-token"), ("OpenAI-Organization", "org-x"), ("OpenAI-Project", "proj_x"),
            ("OpenAI-Beta", "assistants=v2"),
        ])
        let upstream = ForwardedHeaders.upstream(from: client, key: "sk-upstream", authority: "api.example.com")
        #expect(upstream["openai-organization"].isEmpty)
        #expect(upstream["openai-project"].isEmpty)
        #expect(upstream["openai-beta"] == ["assistants=v2"])
        let answer = HTTPHeaders([
            ("Content-Type", "application/json"), ("openai-organization", "user-abc123"),
            ("openai-project", "proj_abc"), ("Set-Cookie", "__cf_bm=x; path=/"), ("set-cookie2", "a=b"),
            ("openai-processing-ms", "12"), ("x-request-id", "req_1"), ("openai-version", "2020-10-01"),
        ])
        let downstream = ForwardedHeaders.downstream(from: answer)
        for dropped in ["openai-organization", "openai-project", "set-cookie", "set-cookie2"] {
            #expect(downstream[dropped].isEmpty, "\(dropped)")
        }
        #expect(downstream["openai-processing-ms"] == ["12"])
        #expect(downstream["x-request-id"] == ["req_1"])
        #expect(downstream["content-type"] == ["application/json"])
    }
}
