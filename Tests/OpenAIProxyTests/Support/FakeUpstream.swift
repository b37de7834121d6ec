import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A fake OpenAI upstream: a real HTTP server (Hummingbird, on 127.0.0.1) speaking JSON and SSE, recording
/// every request it receives so tests can see which upstream key the proxy used.
///
/// Models steer its behaviour: `stream: true` answers with SSE events; model `gated` sends each event
/// after the test calls `release(event:)`, which proves streaming without timing; model `slow` spaces
/// events 200 ms apart. Upstream keys steer it too: `behave(_:for:)` makes every request with a key
/// answer 401, 429 with `Retry-After`, 429 `insufficient_quota` or 500, wait before the first byte, cut
/// a stream after k events, or carry rate-limit headers. Like OpenAI, it refuses any request that carries
/// an `OpenAI-Organization` or `OpenAI-Project` header with 401 `mismatched_organization` (the client's
/// organization is never the pool key's); `identifyingAccounts()` makes it name its account in answer
/// headers (`openai-organization`, `openai-project`, `set-cookie`) and quote the key in error messages.
final class FakeUpstream: Sendable {
    /// How requests carrying one upstream key are answered.
    enum Behaviour: Sendable {
        /// Answers normally.
        case normal
        /// 401 `invalid_api_key`.
        case unauthorized
        /// 401 `invalid_api_key` with OpenAI's message quoting the key; `GET /v1/models` (the probe)
        /// answers normally when `probesPass`.
        case refusedQuotingKey(probesPass: Bool)
        /// 401 `mismatched_organization`, as OpenAI answers a request with another organization's header.
        case mismatchedOrganization
        /// 429 `rate_limit_exceeded` with `Retry-After: seconds`.
        case rateLimited(retryAfter: String)
        /// 429 `insufficient_quota`, except `GET /v1/models`, which answers (as OpenAI's does).
        case quotaExhausted
        /// 500 `server_error`.
        case failing
        /// Waits this long before answering at all.
        case slowFirstByte(Duration)
        /// Streams only the first `events` events of a stream, then breaks the connection.
        case resetAfter(events: Int)
        /// Answers normally, with `x-ratelimit-*` headers.
        case rateLimitHeaders(remainingRequests: Int, remainingTokens: Int, reset: String)
    }

    /// The models every key reaches unless `models(_:for:)` says otherwise.
    static let defaultModels = ["gpt-test", "gpt-4o", "gated", "slow", "streamer", "text-embedding-3-small"]
    /// One request as the upstream saw it.
    struct Received: Sendable {
        let method: String
        let path: String
        let query: String?
        let authorization: String?
        let body: String
    }

    /// The port it listens on.
    let port: Int
    private let state: State
    private let task: Task<Void, any Error>

    /// `http://127.0.0.1:port/v1`, the base URL to configure the proxy with.
    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// Everything received so far.
    var requests: [Received] { state.received.withLock { $0 } }

    /// Everything received but the service's own key probes (`GET /v1/models`): the proxied traffic.
    var traffic: [Received] {
        requests.filter { !($0.method == "GET" && $0.path == "/v1/models") }
    }

    /// How many proxied requests carried each upstream key (`Bearer` stripped).
    var keyCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for request in traffic {
            let key = request.authorization.map { String($0.dropFirst("Bearer ".count)) } ?? ""
            counts[key, default: 0] += 1
        }
        return counts
    }

    /// Lets event `index` (from 0) of every `gated` stream be sent.
    func release(event index: Int) {
        state.released.withLock { $0 = max($0, index) }
    }

    /// Answers requests carrying `key` this way from now on.
    func behave(_ behaviour: Behaviour, for key: String) {
        state.behaviours.withLock { $0[key] = behaviour }
    }

    /// From now on `GET /v1/models` answers 404, as some OpenAI-compatible upstreams do: the keys' models
    /// stay unknown, so requests for any model are forwarded.
    func withoutModelList() {
        state.listsModels.withLock { $0 = false }
    }

    /// `GET /v1/models` with `key` lists `models`.
    func models(_ models: [String], for key: String) {
        state.models.withLock { $0[key] = models }
    }

    /// Requests received with `key` to `path` (such as `/v1/chat/completions`).
    func count(key: String, path: String) -> Int {
        requests.filter { $0.path == path && $0.authorization == "Bearer " + key }.count
    }

    /// From now on every answer names the account (`openai-organization`, `openai-project`, a cookie) and
    /// every error message quotes the key that was used, as OpenAI's do.
    func identifyingAccounts() {
        state.identifiesAccounts.withLock { $0 = true }
    }

    /// The organization, project and cookie the fake names when it identifies accounts.
    static let accountNames = ["org-FakeOrganization7", "proj_FakeProject9", "__cf_bm=FakeCookie3"]

    /// Forgets the requests received so far.
    func reset() {
        state.received.withLock { $0.removeAll() }
    }

    /// Starts the server and waits until it listens.
    static func start() async throws -> FakeUpstream {
        let state = State()
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: buildRouter(state),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "fake-upstream", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        for await port in ports {
            return FakeUpstream(port: port, state: state, task: task)
        }
        throw CancellationError()
    }

    private init(port: Int, state: State, task: Task<Void, any Error>) {
        self.port = port
        self.state = state
        self.task = task
    }

    /// Stops the server.
    func stop() {
        task.cancel()
    }

    deinit {
        task.cancel()
    }

    private final class State: Sendable {
        let received = Mutex<[Received]>([])
        let released = Mutex<Int>(-1)
        let behaviours = Mutex<[String: Behaviour]>([:])
        let models = Mutex<[String: [String]]>([:])
        let listsModels = Mutex(true)
        let identifiesAccounts = Mutex(false)

        func behaviour(_ request: Request) -> Behaviour {
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return .normal }
            return behaviours.withLock { $0[String(header.dropFirst("Bearer ".count))] } ?? .normal
        }
    }

    private struct ChatRequest: Decodable {
        struct StreamOptions: Decodable {
            var includeUsage: Bool?
            enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
        }
        var model: String?
        var stream: Bool?
        var streamOptions: StreamOptions?
        enum CodingKeys: String, CodingKey { case model, stream, streamOptions = "stream_options" }
    }

    /// Applies the per-key behaviours to every route.
    private struct BehaviourMiddleware: RouterMiddleware {
        let state: State

        func handle(
            _ request: Request, context: BasicRequestContext,
            next: (Request, BasicRequestContext) async throws -> Response
        ) async throws -> Response {
            var response = try await respond(request, context: context, next: next)
            if state.identifiesAccounts.withLock({ $0 }) {
                response.headers[HTTPField.Name("openai-organization")!] = FakeUpstream.accountNames[0]
                response.headers[HTTPField.Name("openai-project")!] = FakeUpstream.accountNames[1]
                response.headers.append(
                    HTTPField(name: .setCookie, value: FakeUpstream.accountNames[2] + "; path=/; HttpOnly"))
            }
            return response
        }

        private func respond(
            _ request: Request, context: BasicRequestContext,
            next: (Request, BasicRequestContext) async throws -> Response
        ) async throws -> Response {
            let key = request.headers[.authorization].map { String($0.dropFirst("Bearer ".count)) } ?? ""
            func error(
                _ status: HTTPResponse.Status, _ type: String, _ code: String, _ extra: HTTPFields = [:],
                message: String? = nil
            )
                async throws -> Response
            {
                _ = try await record(request, context: context, state: state)
                var headers = extra
                headers[.contentType] = "application/json"
                var text = message ?? "fake upstream: \(code)"
                if state.identifiesAccounts.withLock({ $0 }) {
                    // As OpenAI quotes a key: its start, stars, its last four characters.
                    text +=
                        " Key \(key.prefix(8))****\(key.suffix(4)) (ending …\(key.suffix(4))) of \(FakeUpstream.accountNames[0])."
                }
                let body =
                    #"{"error":{"message":"\#(text)","type":"\#(type)","param":null,"code":"\#(code)"}}"#
                return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
            }
            let probe = request.method == .get && request.uri.path == "/v1/models"
            if request.headers[HTTPField.Name("OpenAI-Organization")!] != nil
                || request.headers[HTTPField.Name("OpenAI-Project")!] != nil
            {
                return try await error(
                    .unauthorized, "invalid_request_error", "mismatched_organization",
                    message: "OpenAI-Organization header should match organization for API key")
            }
            switch state.behaviour(request) {
            case .normal, .resetAfter:
                return try await next(request, context)
            case .unauthorized:
                return try await error(.unauthorized, "invalid_request_error", "invalid_api_key")
            case .refusedQuotingKey(let probesPass):
                if probe, probesPass { return try await next(request, context) }
                return try await error(
                    .unauthorized, "invalid_request_error", "invalid_api_key",
                    message:
                        "Incorrect API key provided: \(key.prefix(8))****\(key.suffix(4)). You can find your API key at https://platform.openai.com/account/api-keys."
                )
            case .mismatchedOrganization:
                return try await error(
                    .unauthorized, "invalid_request_error", "mismatched_organization",
                    message: "OpenAI-Organization header should match organization for API key")
            case .rateLimited(let retryAfter):
                return try await error(
                    .tooManyRequests, "requests", "rate_limit_exceeded", [HTTPField.Name("Retry-After")!: retryAfter])
            case .quotaExhausted:
                if probe { return try await next(request, context) }
                return try await error(.tooManyRequests, "insufficient_quota", "insufficient_quota")
            case .failing:
                return try await error(.internalServerError, "server_error", "server_error")
            case .slowFirstByte(let delay):
                try await Task.sleep(for: delay)
                return try await next(request, context)
            case .rateLimitHeaders(let requests, let tokens, let reset):
                var response = try await next(request, context)
                response.headers[HTTPField.Name("x-ratelimit-remaining-requests")!] = String(requests)
                response.headers[HTTPField.Name("x-ratelimit-remaining-tokens")!] = String(tokens)
                response.headers[HTTPField.Name("x-ratelimit-reset-requests")!] = reset
                response.headers[HTTPField.Name("x-ratelimit-reset-tokens")!] = reset
                return response
            }
        }
    }

    private static func buildRouter(_ state: State) -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(BehaviourMiddleware(state: state))
        router.post("/v1/chat/completions") { request, context in
            let body = try await record(request, context: context, state: state)
            let chat = (try? JSONDecoder().decode(ChatRequest.self, from: Data(body.utf8))) ?? ChatRequest()
            let model = chat.model ?? "unknown"
            if body.contains(#""huge_answer":true"#) {
                // An answer of about 6 MiB whose usage comes last, past any size a reader might keep.
                let content = String(repeating: "lorem ipsum \\\"usage\\\" ", count: 300_000)
                return json(
                    #"{"id":"chatcmpl-huge","choices":[{"index":0,"message":{"role":"assistant","content":""#
                        + content + #""}}],"usage":{"prompt_tokens":5,"completion_tokens":6000,"total_tokens":6005}}"#)
            }
            guard chat.stream == true else {
                return json(
                    """
                    {"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"\(model)",\
                    "choices":[{"index":0,"message":{"role":"assistant","content":"hello from upstream"},\
                    "finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}
                    """)
            }
            let includeUsage = chat.streamOptions?.includeUsage ?? false
            let cutAfter: Int? =
                if case .resetAfter(let events) = state.behaviour(request) { events } else { nil }
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    for index in 0..<3 {
                        if model == "gated" {
                            while state.released.withLock({ $0 }) < index {
                                try await Task.sleep(for: .milliseconds(5))
                            }
                        } else if model == "slow", index > 0 {
                            try await Task.sleep(for: .milliseconds(200))
                        }
                        try await writer.write(ByteBuffer(string: chunkEvent(model: model, text: "part\(index) ")))
                        if index + 1 == cutAfter {
                            // What is written so far goes out, then the connection breaks mid-answer.
                            try await Task.sleep(for: .milliseconds(50))
                            throw CancellationError()
                        }
                    }
                    if includeUsage {
                        try await writer.write(
                            ByteBuffer(
                                string:
                                    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                                    + "\"model\":\"\(model)\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
                                    + "\"completion_tokens\":3,\"total_tokens\":14}}\n\n"))
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                })
        }
        router.post("/v1/embeddings") { request, context in
            _ = try await record(request, context: context, state: state)
            return json(
                """
                {"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],\
                "model":"text-embedding-3-small","usage":{"prompt_tokens":4,"total_tokens":4}}
                """)
        }
        router.post("/v1/audio/transcriptions") { request, context in
            _ = try await record(request, context: context, state: state)
            return json(#"{"text":"transcribed"}"#)
        }
        router.get("/v1/models") { request, context in
            _ = try await record(request, context: context, state: state)
            guard state.listsModels.withLock({ $0 }) else {
                return Response(
                    status: .notFound, headers: [.contentType: "application/json"],
                    body: .init(
                        byteBuffer: ByteBuffer(
                            string:
                                #"{"error":{"message":"not here","type":"invalid_request_error","param":null,"code":"not_found"}}"#
                        )))
            }
            let key = request.headers[.authorization].map { String($0.dropFirst("Bearer ".count)) } ?? ""
            let models = state.models.withLock { $0[key] } ?? defaultModels
            let entries = models.map { #"{"id":"\#($0)","object":"model","created":1,"owned_by":"test"}"# }
            return json(#"{"object":"list","data":["# + entries.joined(separator: ",") + "]}")
        }
        router.get("/v1/echo") { request, context in
            _ = try await record(request, context: context, state: state)
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[HTTPField.Name("X-Upstream-Seen-Query")!] = request.uri.query ?? ""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        return router
    }

    private static func record(_ request: Request, context: BasicRequestContext, state: State) async throws -> String {
        let buffer = try await request.body.collect(upTo: 64 << 20)
        let body = String(buffer: buffer)
        state.received.withLock {
            $0.append(
                Received(
                    method: request.method.rawValue, path: request.uri.path, query: request.uri.query,
                    authorization: request.headers[.authorization], body: body))
        }
        return body
    }

    private static func json(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private static func chunkEvent(model: String, text: String) -> String {
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"\(model)\","
            + "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(text)\"},\"finish_reason\":null}]}\n\n"
    }
}
