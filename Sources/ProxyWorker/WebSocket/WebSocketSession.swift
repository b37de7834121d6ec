import HTTPServing
import NIOCore
import NIOWebSocket
import RequestScanning
import Shared

/// What a relayed WebSocket's frames mean to the proxy, as pure logic: the client's messages are checked
/// against the token's model allow-list and the objects they may name, and the upstream's messages that end a
/// response give a usage row each. Frames are passed on as they come; only a fragmented client text message
/// under a check is held until its last frame (it must be read whole before it may go).
struct WebSocketSession {
    /// What happens to a frame from the client.
    enum ClientDecision: Equatable {
        /// Pass the frame on as it came.
        case forward
        /// Held: part of a message not complete yet.
        case hold
        /// Pass on this whole message (a fragmented one put back together) as one text frame.
        case forwardMessage(ByteBuffer)
        /// Not passed on: the client gets this `error` event instead.
        case refuse(ErrorBody)
    }

    /// A response the upstream finished, as its usage row says.
    struct ResponseEnded: Equatable {
        /// Its event type (`response.done`, `response.completed` …).
        var type: String
        var usage: TokenUsage?
        /// The model the response names, or the one the socket last asked for.
        var model: String?
        /// The usage row's error: nil for a completed response.
        var error: String?
    }

    /// Event types that end a response: Realtime's, then the Responses API's.
    static let responseEndTypes: Set<String> = [
        "response.done", "response.completed", "response.incomplete", "response.failed",
    ]
    /// Client event types that may name a model.
    static let modelNamingTypes: Set<String> = ["session.update", "response.create"]
    /// The bytes of a message's start kept to read its `type` (OpenAI sends it first).
    static let typePrefixLimit = 512
    /// The most of a fragmented client message held for the allow-list check.
    static let heldMessageLimit = 16 << 20

    /// The token's allowed models; nil when it may use any.
    let allowedModels: [String]?
    /// The objects a `response.create` may name; nil when no client token opened the socket.
    let objects: WebSocketObjectCheck?
    /// Whether the upstream's `response.created` events name stored objects (the Responses API's sockets;
    /// Realtime's responses are not stored).
    let recordsResponses: Bool
    /// The response the last upstream message created, until `takeCreatedResponse()` takes it.
    private var createdResponse: CreatedObject?
    /// The model the socket uses: the query's, then the last one a client event named.
    private(set) var model: String?

    private var clientHeld: ByteBuffer?
    private var clientInText = false
    private var upstreamInText = false
    /// The current upstream message's type, once its start showed it.
    private var upstreamType: String?
    private var upstreamPrefix: [UInt8] = []
    private var upstreamUsage = UsageReader()

    /// A session for a token with `allowedModels` and `objects` on a socket opened for `model`.
    init(
        allowedModels: [String]?, model: String?, recordsResponses: Bool = false,
        objects: WebSocketObjectCheck? = nil
    ) {
        self.allowedModels = allowedModels
        self.objects = objects
        self.model = model
        self.recordsResponses = recordsResponses
    }

    // MARK: - Client to upstream

    /// A frame from the client (`payload` unmasked).
    mutating func clientFrame(opcode: WebSocketOpcode, fin: Bool, payload: ByteBuffer) -> ClientDecision {
        switch opcode {
        case .text:
            clientInText = !fin
            guard allowedModels != nil || objects != nil, !fin else { return fin ? check(payload) : .forward }
            clientHeld = payload
            return .hold
        case .continuation where clientInText:
            clientInText = !fin
            guard clientHeld != nil else { return .forward }
            var incoming = payload
            if clientHeld!.readableBytes + incoming.readableBytes > Self.heldMessageLimit {
                clientHeld = nil
                return .refuse(
                    ErrorBody(
                        message: "The message is larger than \(Self.heldMessageLimit) bytes.",
                        type: "invalid_request_error", code: "message_too_large"))
            }
            clientHeld!.writeBuffer(&incoming)
            guard fin else { return .hold }
            let message = clientHeld!
            clientHeld = nil
            switch check(message) {
            case .forward: return .forwardMessage(message)
            case let other: return other
            }
        default:
            return .forward
        }
    }

    /// Reads a whole client text message: a `session.update` or `response.create` naming a model the token
    /// may not use is refused, and so is a `response.create` naming an object the socket may not reach; an
    /// allowed model becomes the socket's model.
    private mutating func check(_ message: ByteBuffer) -> ClientDecision {
        let (type, named) = message.withUnsafeReadableBytes { Self.typeAndModel(in: $0) }
        if let named, let allowedModels, !allowedModels.contains(named) {
            return .refuse(
                ErrorBody(
                    message: "This proxy token may not use the model `\(named.prefix(200))`.",
                    type: "invalid_request_error", code: "model_not_allowed"))
        }
        if let objects, let type, WebSocketObjectCheck.objectNamingTypes.contains(type) {
            let ids = message.withUnsafeReadableBytes { RequestModelReader.json($0).objectIDs }
            if let refusal = objects.refusal(ids) { return .refuse(refusal) }
        }
        if let named { model = named }
        return .forward
    }

    /// A client event's `type`, and the model it names when it is a `session.update` or `response.create`
    /// (`model`, `session.model` or `response.model`), read in one pass over the top level; a repeated member
    /// counts by its last value, as the upstream reads it. Both nil for text that is not a JSON object.
    static func typeAndModel(in bytes: UnsafeRawBufferPointer) -> (type: String?, model: String?) {
        var type: String?
        var model: String?
        var nested: [Range<Int>] = []
        var scanner = JSONScanner(bytes)
        do {
            try scanner.forEachMember { name, value in
                if JSONText.matches(name, "type", in: bytes) {
                    type = JSONText.decodeString(value: value, in: bytes)
                } else if JSONText.matches(name, "model", in: bytes) {
                    model = JSONText.decodeString(value: value, in: bytes)
                } else if JSONText.matches(name, "session", in: bytes) || JSONText.matches(name, "response", in: bytes)
                {
                    nested.append(value)
                }
                return true
            }
        } catch {
            return (nil, nil)
        }
        guard let type, modelNamingTypes.contains(type) else { return (type, nil) }
        if let model { return (type, model) }
        for range in nested.reversed() {
            var inner = JSONScanner(bytes, range: range)
            var found: String?
            try? inner.forEachMember(depth: 2) { name, value in
                if JSONText.matches(name, "model", in: bytes) { found = JSONText.decodeString(value: value, in: bytes) }
                return true
            }
            if let found { return (type, found) }
        }
        return (type, nil)
    }

    // MARK: - Upstream to client

    /// A frame from the upstream: the response it ends, when it is the last frame of such a message.
    mutating func upstreamFrame(opcode: WebSocketOpcode, fin: Bool, payload: ByteBuffer) -> ResponseEnded? {
        switch opcode {
        case .text:
            upstreamInText = true
            upstreamType = nil
            upstreamPrefix.removeAll(keepingCapacity: true)
            upstreamUsage = UsageReader()
        case .continuation where upstreamInText:
            break
        default:
            return nil
        }
        // Most messages are deltas (audio, text): once the start names another type, the rest is not read.
        if let type = upstreamType, !Self.responseEndTypes.contains(type), type != Self.responseCreatedType {
            if fin { upstreamInText = false }
            return nil
        }
        payload.withUnsafeReadableBytes { bytes in
            let room = Self.typePrefixLimit - upstreamPrefix.count
            if room > 0 {
                upstreamPrefix.append(contentsOf: bytes.prefix(room))
                if upstreamType == nil { upstreamType = Self.leadingType(upstreamPrefix) }
            }
            if let type = upstreamType, !Self.responseEndTypes.contains(type) { return }
            upstreamUsage.consume(bytes)
        }
        guard fin else { return nil }
        upstreamInText = false
        if upstreamType == Self.responseCreatedType {
            // The id leads the response object, well inside the kept start.
            createdResponse = recordsResponses ? upstreamPrefix.withUnsafeBytes(CreatedObject.inResponseCreated) : nil
            return nil
        }
        guard let type = upstreamType, Self.responseEndTypes.contains(type) else { return nil }
        let named = upstreamPrefix.withUnsafeBytes { bytes in
            JSONScanner.string(at: [.member("response"), .member("model")], in: bytes)
        }
        let error: String? =
            switch type {
            case "response.failed": "response_failed"
            case "response.incomplete": "response_incomplete"
            default: nil
            }
        return ResponseEnded(type: type, usage: upstreamUsage.finish(), model: named ?? model, error: error)
    }

    /// The event that starts a response; in the Responses API's WebSocket mode its `response.id` names a stored
    /// response.
    static let responseCreatedType = "response.created"

    /// The stored response the last upstream message created, once.
    mutating func takeCreatedResponse() -> CreatedObject? {
        defer { createdResponse = nil }
        return createdResponse
    }

    /// The `type` of a message from the start of its text: read member by member up to where the prefix is cut.
    static func leadingType(_ prefix: [UInt8]) -> String? {
        prefix.withUnsafeBytes { bytes in
            var scanner = JSONScanner(bytes)
            var type: String?
            try? scanner.forEachMember { name, value in
                guard JSONText.matches(name, "type", in: bytes) else { return true }
                type = JSONText.decodeString(value: value, in: bytes)
                return false
            }
            return type
        }
    }
}
