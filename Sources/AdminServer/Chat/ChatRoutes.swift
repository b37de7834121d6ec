import AsyncHTTPClient
import Foundation
import HTTPServing
import HTTPTypes
import Hummingbird
import NIOCore
import Shared

/// `/api/chat`: the operator's chat console. A message goes through the proxy's own `/v1/chat/completions`
/// with the admin server's internal client token, so it gets rotation, failover and usage like any client;
/// `stream: true` passes the proxy's server-sent events through to the browser. Each conversation is kept
/// in `chat_history`.
struct ChatRoutes {
    let services: AdminServices

    struct Message: Codable {
        let role: String
        let content: String
    }

    struct ChatBody: Decodable {
        let model: String
        let messages: [Message]
        let stream: Bool?
    }

    /// What is sent to the proxy.
    struct ProxyBody: Encodable {
        struct StreamOptions: Encodable {
            let includeUsage = true
            enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
        }
        let model: String
        let messages: [Message]
        let stream: Bool
        let streamOptions: StreamOptions?
        enum CodingKeys: String, CodingKey { case model, messages, stream, streamOptions = "stream_options" }
    }

    struct Conversation: Encodable {
        let id: Int64
        @NullEncoded var model: String?
        @NullEncoded var keyID: Int64?
        /// The key's name now; null when it was removed since.
        @NullEncoded var keyName: String?
        let timestamp: Date
        @NullEncoded var request: String?
        @NullEncoded var response: String?
        enum CodingKeys: String, CodingKey {
            case id, model, timestamp, request, response, keyID = "key_id", keyName = "key_name"
        }

        init(_ conversation: ChatConversation) {
            id = conversation.id
            model = conversation.model
            keyID = conversation.keyID
            keyName = conversation.keyName
            timestamp = conversation.timestamp
            request = conversation.request
            response = conversation.response
        }
    }

    /// The body validated: a known, enabled model and 1 to 200 messages of a known role.
    private func validated(_ body: ChatBody) async throws -> ChatBody {
        _ = try ModelStore.validName(body.model, field: "model")
        guard let model = try await services.models.get(body.model), model.enabled else {
            throw APIError.invalid("model", "names an unknown or disabled model: \(body.model)")
        }
        guard (1...200).contains(body.messages.count) else {
            throw APIError.invalid("messages", "must hold 1 to 200 messages")
        }
        for (index, message) in body.messages.enumerated() {
            guard ["system", "user", "assistant"].contains(message.role) else {
                throw APIError.invalid("messages[\(index)].role", "must be system, user or assistant")
            }
            guard message.content.count <= 100_000 else {
                throw APIError.invalid("messages[\(index)].content", "must be at most 100000 characters")
            }
        }
        return body
    }

    func register(on api: APIGroup) {
        api.on(.post, "chat") { request, context in
            guard let chat = services.chat else {
                throw APIError.unavailable(
                    .badGateway, "Chat needs the proxy, which is not running.", code: "proxy_unavailable")
            }
            let body = try await validated(try await JSONBody.decode(ChatBody.self, from: request, context: context))
            let stream = body.stream ?? false
            let encoder = JSONEncoder()
            var outgoing = HTTPClientRequest(url: chat.baseURL + "/v1/chat/completions")
            outgoing.method = .POST
            outgoing.headers.add(name: "authorization", value: "Bearer \(chat.token)")
            outgoing.headers.add(name: "content-type", value: "application/json")
            outgoing.body = .bytes(
                ByteBuffer(
                    bytes: try encoder.encode(
                        ProxyBody(
                            model: body.model, messages: body.messages, stream: stream,
                            streamOptions: stream ? .init() : nil))))
            let answer: HTTPClientResponse
            do {
                answer = try await AdminHTTPClient.shared.execute(outgoing, timeout: .seconds(600))
            } catch {
                throw APIError.unavailable(.badGateway, "The proxy could not be reached.", code: "proxy_unreachable")
            }
            let requestText = String(decoding: try encoder.encode(body.messages), as: UTF8.self)
            // Which key served it: the proxy says so to the console's own token only.
            let keyID = answer.headers.first(name: ClientToken.servedKeyHeader).flatMap { Int64($0) }
            var servedBy: HTTPFields = [:]
            if let keyID { servedBy[Self.servedKeyField] = String(keyID) }
            let isStream = answer.headers.first(name: "content-type")?.hasPrefix("text/event-stream") ?? false
            guard answer.status == .ok, isStream else {
                let collected = try await answer.body.collect(upTo: 16 << 20)
                let status = Self.clientStatus(Int(answer.status.code))
                if status == 200 {
                    let text = Self.completionText(Data(collected.readableBytesView))
                    try await record(model: body.model, keyID: keyID, request: requestText, response: text)
                }
                return Response(
                    status: .init(code: status), headers: servedBy + [.contentType: "application/json"],
                    body: .init(
                        byteBuffer: status == 502 && answer.status.code != 502
                            ? Self.proxyError(answer.status.code) : collected)
                )
            }
            let recorder = self
            return Response(
                status: .ok, headers: servedBy + [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    var events = ""
                    for try await chunk in answer.body {
                        if events.utf8.count < 4 << 20 { events += String(buffer: chunk) }
                        try await writer.write(chunk)
                    }
                    try await writer.finish(nil)
                    try? await recorder.record(
                        model: body.model, keyID: keyID, request: requestText, response: Self.streamText(events))
                })
        }
        api.on(.get, "chat/history") { request, _ in
            let query = QueryInput(request)
            let limit = try query.int("limit", default: 10, in: 1...500)
            let offset = try query.int("offset", default: 0, in: 0...10_000_000)
            let (conversations, total) = try await services.chatHistory.page(limit: limit, offset: offset)
            let page = UsageRoutes.Page(
                data: conversations.map(Conversation.init), total: total, limit: limit, offset: offset)
            return try JSONResponse.make(page)
        }
        api.on(.get, "chat/history/{id}") { _, context in
            let id = try PathInput.id(context)
            guard let conversation = try await services.chatHistory.conversation(id: id) else {
                throw APIError.notFound("No conversation with id \(id).")
            }
            return try JSONResponse.make(Conversation(conversation))
        }
    }

    /// The header telling the browser which key served a chat (the proxy's, passed on).
    static let servedKeyField = HTTPField.Name("X-OpenAI-Proxy-Key-Id")!

    /// Keeps one exchange in `chat_history`.
    func record(model: String, keyID: Int64?, request: String, response: String) async throws {
        try await services.chatHistory.record(
            model: model, keyID: keyID, request: request, response: response, timestamp: Date())
    }

    /// The status to answer the browser with: the proxy's when it is a documented one; 409 when the pool
    /// has no active key (503 from the proxy: the operator's state to fix, not a fault); else 502.
    static func clientStatus(_ status: Int) -> Int {
        if status == 503 { return 409 }
        return [200, 400, 401, 403, 404, 413, 429].contains(status) ? status : 502
    }

    private static func proxyError(_ status: UInt) -> ByteBuffer {
        ByteBuffer(
            string: ErrorBody(
                message: "The proxy answered with status \(status).", type: "server_error", code: "upstream_error"
            ).json)
    }

    private struct Completion: Decodable {
        struct Choice: Decodable {
            struct Content: Decodable { let content: String? }
            let message: Content?
            let delta: Content?
        }
        let choices: [Choice]?
    }

    /// The assistant's text of a chat completion body.
    static func completionText(_ data: Data) -> String {
        let completion = try? JSONDecoder().decode(Completion.self, from: data)
        return completion?.choices?.first?.message?.content ?? ""
    }

    /// The assistant's text assembled from a stream's `data:` events.
    static func streamText(_ events: String) -> String {
        var text = ""
        for line in events.split(separator: "\n") where line.hasPrefix("data: ") {
            let payload = line.dropFirst(6)
            guard payload != "[DONE]",
                let completion = try? JSONDecoder().decode(Completion.self, from: Data(payload.utf8))
            else { continue }
            text += completion.choices?.first?.delta?.content ?? ""
        }
        return text
    }
}
