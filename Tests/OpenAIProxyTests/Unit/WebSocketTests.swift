import HTTPServing
import NIOCore
import NIOHTTP1
import NIOWebSocket
import RequestScanning
import Testing

@testable import ProxyWorker
@testable import Shared

/// What a WebSocket handshake asks for, read from its head alone.
@Suite("WebSocket upgrade")
struct WebSocketUpgradeTests {
    static func head(
        _ method: HTTPMethod = .GET, upgrade: String? = "websocket", protocols: String? = nil,
        extra: [(String, String)] = []
    ) -> HTTPRequestHead {
        var headers = HTTPHeaders(extra)
        if let upgrade {
            headers.add(name: "connection", value: "Upgrade")
            headers.add(name: "upgrade", value: upgrade)
        }
        if let protocols { headers.add(name: "sec-websocket-protocol", value: protocols) }
        return HTTPRequestHead(version: .http1_1, method: method, uri: "/", headers: headers)
    }

    @Test("the Realtime and Responses paths are relayed; other paths, methods or upgrades are not")
    func relayedPaths() {
        #expect(WebSocketUpgrade(head: Self.head(), path: "/v1/realtime", query: nil) != nil)
        #expect(WebSocketUpgrade(head: Self.head(upgrade: "WebSocket"), path: "/v1/responses", query: nil) != nil)
        #expect(WebSocketUpgrade(head: Self.head(), path: "/v1/chat/completions", query: nil) == nil)
        #expect(WebSocketUpgrade(head: Self.head(.POST), path: "/v1/realtime", query: nil) == nil)
        #expect(WebSocketUpgrade(head: Self.head(upgrade: nil), path: "/v1/realtime", query: nil) == nil)
        #expect(WebSocketUpgrade(head: Self.head(upgrade: "h2c"), path: "/v1/realtime", query: nil) == nil)
    }

    @Test("the browser's token subprotocol is read and kept apart from the offered subprotocols")
    func tokenSubprotocol() throws {
        let upgrade = try #require(
            WebSocketUpgrade(
                head: Self.head(protocols: "realtime, openai-insecure-api-key.tok-123, openai-beta.realtime-v1"),
                path: "/v1/realtime", query: "model=gpt-4o-realtime%2Dpreview&x=1"))
        #expect(upgrade.subprotocolToken == "tok-123")
        #expect(upgrade.offeredProtocols == ["realtime", "openai-beta.realtime-v1"])
        #expect(upgrade.queryModel == "gpt-4o-realtime-preview")
    }

    @Test("no model in the query, or an empty one, is no model")
    func queryModel() {
        #expect(WebSocketUpgradeTests.model("x=1") == nil)
        #expect(WebSocketUpgradeTests.model("model=") == nil)
        #expect(WebSocketUpgradeTests.model("models=a&model=b") == "b")
    }

    static func model(_ query: Substring) -> String? {
        WebSocketUpgrade(head: head(), path: "/v1/realtime", query: query)?.queryModel
    }

    @Test("upstream, the handshake carries the key and the client's headers, never the token or extensions")
    func upstreamHeaders() throws {
        let head = Self.head(
            protocols: "realtime, openai-insecure-api-key.tok-123",
            extra: [
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("sec-websocket-version", "13"),
                ("sec-websocket-extensions", "permessage-deflate"), ("openai-beta", "realtime=v1"),
                ("authorization", "Bearer client-token"),
            ])
        let upgrade = try #require(WebSocketUpgrade(head: head, path: "/v1/realtime", query: nil))
        let headers = upgrade.upstreamHeaders(
            ForwardedHeaders.upstream(from: head.headers, key: "sk-pool", authority: "api.test"))
        #expect(headers["authorization"] == ["Bearer sk-pool"])
        #expect(headers["sec-websocket-protocol"] == ["realtime"])
        #expect(headers["sec-websocket-extensions"].isEmpty)
        #expect(headers["sec-websocket-key"] == ["dGhlIHNhbXBsZSBub25jZQ=="])
        #expect(headers["sec-websocket-version"] == ["13"])
        #expect(headers["openai-beta"] == ["realtime=v1"])
        #expect(headers["upgrade"] == ["websocket"])
        #expect(headers["connection"] == ["Upgrade"])
        #expect(!headers.contains { $0.value.contains("tok-123") || $0.value.contains("client-token") })
    }

    @Test("the client's 101 takes the upstream's accept, and its subprotocol only when the client offered it")
    func clientHeaders() throws {
        let upgrade = try #require(
            WebSocketUpgrade(head: Self.head(protocols: "realtime"), path: "/v1/realtime", query: nil))
        let chosen = upgrade.clientHeaders(
            fromUpstream: HTTPHeaders([
                ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), ("sec-websocket-protocol", "realtime"),
                ("openai-organization", "org-secret"), ("sec-websocket-extensions", "permessage-deflate"),
            ]))
        #expect(chosen["sec-websocket-accept"] == ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])
        #expect(chosen["sec-websocket-protocol"] == ["realtime"])
        #expect(chosen["openai-organization"].isEmpty)
        #expect(chosen["sec-websocket-extensions"].isEmpty)
        let other = upgrade.clientHeaders(fromUpstream: HTTPHeaders([("sec-websocket-protocol", "other")]))
        #expect(other["sec-websocket-protocol"].isEmpty)
    }
}

/// The frames' meaning: the allow-list on the client's messages, usage from the upstream's.
@Suite("WebSocket session")
struct WebSocketSessionTests {
    static func text(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

    @Test("a client message naming a model outside the allow-list is refused; an allowed one sets the model")
    func allowList() {
        var session = WebSocketSession(allowedModels: ["gpt-ok"], model: "gpt-ok")
        let refused = session.clientFrame(
            opcode: .text, fin: true, payload: Self.text(#"{"type":"session.update","session":{"model":"gpt-no"}}"#))
        guard case .refuse(let error) = refused else {
            Issue.record("expected a refusal, got \(refused)")
            return
        }
        #expect(error.code == "model_not_allowed")
        #expect(
            session.clientFrame(
                opcode: .text, fin: true, payload: Self.text(#"{"type":"response.create","model":"gpt-no"}"#))
                != .forward)
        #expect(
            session.clientFrame(
                opcode: .text, fin: true,
                payload: Self.text(#"{"type":"response.create","response":{"model":"gpt-ok"}}"#)) == .forward)
        #expect(session.model == "gpt-ok")
        // Other events are not read for a model.
        #expect(
            session.clientFrame(
                opcode: .text, fin: true, payload: Self.text(#"{"type":"input_audio_buffer.append","model":"gpt-no"}"#))
                == .forward)
        #expect(session.clientFrame(opcode: .binary, fin: true, payload: Self.text("x")) == .forward)
    }

    @Test("without an allow-list every frame passes as it comes, fragments too")
    func noAllowList() {
        var session = WebSocketSession(allowedModels: nil, model: nil)
        #expect(
            session.clientFrame(opcode: .text, fin: false, payload: Self.text(#"{"type":"session.update","#))
                == .forward)
        #expect(
            session.clientFrame(opcode: .continuation, fin: true, payload: Self.text(#""model":"any"}"#)) == .forward)
        #expect(
            session.clientFrame(opcode: .text, fin: true, payload: Self.text(#"{"type":"session.update","model":"m"}"#))
                == .forward)
        #expect(session.model == "m")
    }

    @Test("under an allow-list a fragmented message is held, then passed on whole or refused")
    func fragmentsUnderAllowList() {
        var session = WebSocketSession(allowedModels: ["gpt-ok"], model: nil)
        #expect(
            session.clientFrame(opcode: .text, fin: false, payload: Self.text(#"{"type":"session.update","#)) == .hold)
        // A ping between fragments passes at once.
        #expect(session.clientFrame(opcode: .ping, fin: true, payload: Self.text("p")) == .forward)
        #expect(
            session.clientFrame(opcode: .continuation, fin: true, payload: Self.text(#""model":"gpt-ok"}"#))
                == .forwardMessage(Self.text(#"{"type":"session.update","model":"gpt-ok"}"#)))
        #expect(
            session.clientFrame(opcode: .text, fin: false, payload: Self.text(#"{"type":"session.update","#)) == .hold)
        let refused = session.clientFrame(opcode: .continuation, fin: true, payload: Self.text(#""model":"gpt-no"}"#))
        #expect(refused != .forward && refused != .hold)
    }

    /// A session of token 1 on key 10, where `resp_mine` is token 1's on key 10, `resp_elsewhere` token 1's on
    /// key 11, `file-theirs` token 2's on key 10.
    static func objectSession() -> WebSocketSession {
        let records = [
            StoredObject(id: "resp_mine", kind: "response", keyID: 10, tokenID: 1, createdAt: 0, expiresAt: .max),
            StoredObject(id: "resp_elsewhere", kind: "response", keyID: 11, tokenID: 1, createdAt: 0, expiresAt: .max),
            StoredObject(id: "file-theirs", kind: "file", keyID: 10, tokenID: 2, createdAt: 0, expiresAt: .max),
        ]
        let check = WebSocketObjectCheck(tokenID: 1, keyID: 10) { id in records.first { $0.id == id } }
        return WebSocketSession(allowedModels: nil, model: nil, recordsResponses: true, objects: check)
    }

    @Test("a response.create naming another token's object, or one on another key, is refused; its own passes")
    func objectsOnTheSocket() {
        var session = Self.objectSession()
        func sent(_ text: String) -> WebSocketSession.ClientDecision {
            session.clientFrame(opcode: .text, fin: true, payload: Self.text(text))
        }
        #expect(sent(#"{"type":"response.create","previous_response_id":"resp_mine","input":"hi"}"#) == .forward)
        #expect(sent(#"{"type":"response.create","previous_response_id":"resp_unknown"}"#) == .forward)
        let hidden = sent(
            #"{"type":"response.create","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-theirs"}]}]}"#
        )
        #expect(hidden == .refuse(ObjectAffinity.notFound(Self.storedTheirs)))
        guard case .refuse(let elsewhere) = sent(#"{"type":"response.create","previous_response_id":"resp_elsewhere"}"#)
        else {
            Issue.record("a response on another key passed")
            return
        }
        #expect(elsewhere.code == "object_on_other_key" && elsewhere.message.contains("resp_elsewhere"))
        // Only a response.create is read for objects.
        #expect(sent(#"{"type":"conversation.item.create","previous_response_id":"resp_elsewhere"}"#) == .forward)
        // A fragmented message is held and read whole.
        #expect(
            session.clientFrame(opcode: .text, fin: false, payload: Self.text(#"{"type":"response.create","#)) == .hold)
        let whole = session.clientFrame(
            opcode: .continuation, fin: true, payload: Self.text(#""previous_response_id":"resp_elsewhere"}"#))
        guard case .refuse = whole else {
            Issue.record("a fragmented message naming another key's response passed: \(whole)")
            return
        }
    }

    static let storedTheirs = StoredObject(
        id: "file-theirs", kind: "file", keyID: 10, tokenID: 2, createdAt: 0, expiresAt: .max)

    @Test("the upstream's response ends give their usage, a message cut across frames too; other events none")
    func responseEnds() {
        var session = WebSocketSession(allowedModels: nil, model: "gpt-rt")
        #expect(
            session.upstreamFrame(
                opcode: .text, fin: true,
                payload: Self.text(#"{"type":"conversation.item.created","usage":{"input_tokens":1}}"#)) == nil)
        let done = session.upstreamFrame(
            opcode: .text, fin: true,
            payload: Self.text(
                #"{"type":"response.done","response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":7,"total_tokens":12}}}"#
            ))
        #expect(
            done
                == WebSocketSession.ResponseEnded(
                    type: "response.done", usage: TokenUsage(promptTokens: 5, completionTokens: 7, totalTokens: 12),
                    model: "gpt-rt", error: nil))

        let text =
            #"{"type":"response.failed","response":{"model":"gpt-x","output":"\#(String(repeating: "a", count: 2000))","usage":{"input_tokens":3,"output_tokens":0}}}"#
        let bytes = Array(text.utf8)
        #expect(
            session.upstreamFrame(opcode: .text, fin: false, payload: ByteBuffer(bytes: bytes[..<100])) == nil)
        #expect(
            session.upstreamFrame(opcode: .ping, fin: true, payload: Self.text("p")) == nil)
        let failed = session.upstreamFrame(opcode: .continuation, fin: true, payload: ByteBuffer(bytes: bytes[100...]))
        #expect(failed?.type == "response.failed")
        #expect(failed?.error == "response_failed")
        #expect(failed?.usage == TokenUsage(promptTokens: 3, completionTokens: 0, totalTokens: 3))
        // Past the kept start, the model is the socket's.
        #expect(failed?.model == "gpt-rt")
        #expect(session.upstreamFrame(opcode: .binary, fin: true, payload: Self.text("{}")) == nil)
    }

    @Test("a Responses socket's response.created names a stored response once, a cut one too; Realtime's none")
    func createdResponses() {
        let created =
            #"{"type":"response.created","sequence_number":0,"response":"#
            + #"{"id":"resp_ws1","object":"response","status":"in_progress","output":[]}}"#
        var responses = WebSocketSession(allowedModels: nil, model: nil, recordsResponses: true)
        #expect(responses.upstreamFrame(opcode: .text, fin: true, payload: Self.text(created)) == nil)
        #expect(responses.takeCreatedResponse() == CreatedObject(id: "resp_ws1", kind: "response"))
        #expect(responses.takeCreatedResponse() == nil)
        let bytes = Array(created.replacingOccurrences(of: "resp_ws1", with: "resp_ws2").utf8)
        #expect(responses.upstreamFrame(opcode: .text, fin: false, payload: ByteBuffer(bytes: bytes[..<40])) == nil)
        #expect(responses.takeCreatedResponse() == nil)
        let rest = ByteBuffer(bytes: bytes[40...])
        #expect(responses.upstreamFrame(opcode: .continuation, fin: true, payload: rest) == nil)
        #expect(responses.takeCreatedResponse() == CreatedObject(id: "resp_ws2", kind: "response"))
        let delta = #"{"type":"response.output_text.delta","response":{"id":"resp_no"}}"#
        #expect(responses.upstreamFrame(opcode: .text, fin: true, payload: Self.text(delta)) == nil)
        #expect(responses.takeCreatedResponse() == nil)

        var realtime = WebSocketSession(allowedModels: nil, model: "gpt-rt")
        #expect(realtime.upstreamFrame(opcode: .text, fin: true, payload: Self.text(created)) == nil)
        #expect(realtime.takeCreatedResponse() == nil)
    }
}

/// The request state machine's side of a WebSocket handshake.
extension RequestStateMachineTests {
    @Test("a Realtime handshake authenticates by subprotocol, checks its query's model, and goes out fresh")
    func webSocketHandshake() {
        let limited = TokenEntry(id: 9, limits: ClientTokenLimits(allowedModels: ["gpt-rt"]))
        var (machine, first) = machine(
            .GET, "/v1/realtime?model=gpt-rt",
            headers: [("upgrade", "websocket"), ("sec-websocket-protocol", "realtime, openai-insecure-api-key.t")],
            bearer: false, token: limited)
        guard case .none = first else {
            Issue.record("expected no action, got \(first)")
            return
        }
        #expect(machine.request.token?.id == 9)
        #expect(machine.request.webSocket?.offeredProtocols == ["realtime"])
        guard case .checkTokenLimits(_, let model) = machine.endReceived(keepsTexts: false) else {
            Issue.record("expected the token's limits to be checked")
            return
        }
        #expect(model == .named("gpt-rt"))
        _ = machine.tokenLimitsChecked(.allow)
        _ = machine.routed(.candidates(Self.keys))
        guard case .connect(_, fresh: true) = machine.keyPicked(Self.keys[0]) else {
            Issue.record("a socket's upstream connection must be a new one")
            return
        }
        _ = machine.connected()
        let switching = HTTPResponseHead(version: .http1_1, status: .switchingProtocols)
        guard case .none = machine.upstreamHeadReceived(switching, now: .now, transcriptLimit: 0) else {
            Issue.record("the 101 waits for its end")
            return
        }
        let end = machine.upstreamEndReceived(now: .now)
        guard case .upgrade(let head) = end else {
            Issue.record("expected the upgrade, got \(end)")
            return
        }
        #expect(head.status == .switchingProtocols)
        #expect(end.outcome == nil)
        #expect(machine.state == .finished)
    }

    @Test("a 101 to anything but a relayed handshake is not an answer, and another path's Upgrade is not one")
    func notAHandshake() {
        var (machine, _) = machine(.GET, "/v1/models", headers: [("upgrade", "websocket")])
        #expect(machine.request.webSocket == nil)
        _ = machine.endReceived(keepsTexts: false)
        _ = machine.routed(.candidates(Self.keys))
        guard case .connect(_, fresh: false) = machine.keyPicked(Self.keys[0]) else {
            Issue.record("a plain request takes a pooled connection")
            return
        }
        _ = machine.connected()
        let switching = HTTPResponseHead(version: .http1_1, status: .switchingProtocols)
        guard case .none = machine.upstreamHeadReceived(switching, now: .now, transcriptLimit: 0) else {
            Issue.record("a stray 101 is ignored")
            return
        }
        guard case .none = machine.upstreamEndReceived(now: .now) else {
            Issue.record("a stray 101 ends nothing")
            return
        }
        #expect(machine.state == .awaitingHead)
    }

    @Test("a handshake without a token is refused before anything else")
    func webSocketWithoutToken() {
        let (machine, action) = machine(
            .GET, "/v1/realtime?model=gpt-rt", headers: [("upgrade", "websocket")], bearer: false)
        guard case .countRefused(.missingToken) = action else {
            Issue.record("expected a refusal, got \(action)")
            return
        }
        #expect(machine.state == .answeringLocally)
    }
}

/// The model a client event names, read the way the upstream reads it.
@Suite("WebSocket event model")
struct WebSocketEventModelTests {
    static func named(_ text: String) -> String? {
        Array(text.utf8).withUnsafeBytes { WebSocketSession.typeAndModel(in: $0).model }
    }

    @Test("top-level, session and response models of the events that may name one; the last of a repeated member")
    func namedModel() {
        #expect(Self.named(#"{"type":"response.create","model":"a"}"#) == "a")
        #expect(Self.named(#"{"session":{"model":"b"},"type":"session.update"}"#) == "b")
        #expect(Self.named(#"{"type":"response.create","response":{"instructions":"x","model":"c"}}"#) == "c")
        #expect(Self.named(#"{"type":"input_audio_buffer.append","model":"d"}"#) == nil)
        #expect(Self.named(#"{"type":"x","session":{"model":"e"},"type":"session.update"}"#) == "e")
        #expect(Self.named(#"{"type":"session.update","model":"f","model":"g"}"#) == "g")
        #expect(Self.named("not json") == nil)
    }
}
