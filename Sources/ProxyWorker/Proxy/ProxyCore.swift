import Logging
import NIOCore
import NIOHTTP1
import RequestScanning
import Shared

/// What every connection of a worker shares: configuration, the routing snapshot, the key selector,
/// the usage sender and the upstream pools. Immutable after start; everything in it is thread-safe.
final class ProxyCore: Sendable {
    let worker: Int
    let upstream: UpstreamBaseURL
    let maxBodyBytes: Int
    let snapshots: SnapshotStore
    let selector: KeySelector
    /// Key health as this worker sees it; picks the keys a request may use.
    let health: KeyHealthBoard
    /// Upstream attempts per request, each on another key.
    let maxAttempts: Int
    /// How long an attempt may wait for the answer's head.
    let firstByteTimeout: TimeAmount
    let usage: UsageSender
    /// Per-minute request counts of client tokens with a limit, shared by every worker.
    let rateWindows: TokenRateWindows
    let requestIDs = RequestIDs()
    let pools: UpstreamPools
    let logger: Logger
    /// What usage is recorded: on or off, and what the chat history keeps.
    let recording: UsageRecording
    /// Requests refused before a token was known, counted per minute.
    let refused: RefusedRequests
    /// In-flight reservations against client tokens' quotas, shared by every worker.
    let quotaReservations: TokenQuotaReservations?

    init(
        worker: Int, upstream: UpstreamBaseURL, maxBodyBytes: Int, snapshots: SnapshotStore, selector: KeySelector,
        health: KeyHealthBoard, maxAttempts: Int, firstByteTimeout: TimeAmount, usage: UsageSender,
        rateWindows: TokenRateWindows, pools: UpstreamPools, logger: Logger,
        recording: UsageRecording = UsageRecording(), refused: RefusedRequests? = nil,
        quotaReservations: TokenQuotaReservations? = nil
    ) {
        self.worker = worker
        self.upstream = upstream
        self.maxBodyBytes = maxBodyBytes
        self.snapshots = snapshots
        self.selector = selector
        self.health = health
        self.maxAttempts = maxAttempts
        self.firstByteTimeout = firstByteTimeout
        self.usage = usage
        self.rateWindows = rateWindows
        self.pools = pools
        self.logger = logger
        self.recording = recording
        self.refused =
            refused ?? RefusedRequests(source: "w\(worker)", usage: recording.enabled ? usage : nil, logger: logger)
        self.quotaReservations = quotaReservations
    }

    /// The largest request body accepted now: the live setting, else the configuration's.
    func maxBodyBytes(_ snapshot: RoutingSnapshot) -> Int {
        snapshot.settings?.maxBodyBytes ?? maxBodyBytes
    }

    /// The key selector for the rotation strategy in force (a live setting can change it).
    func selector(_ snapshot: RoutingSnapshot) -> KeySelector {
        guard let strategy = snapshot.settings?.rotationStrategy, strategy != selector.strategy else { return selector }
        return selector.with(strategy: strategy)
    }

    /// How long an attempt waits for the first byte: the live setting when one was set, else the
    /// configuration's (which may be below a second).
    func firstByteTimeout(_ snapshot: RoutingSnapshot) -> TimeAmount {
        guard let settings = snapshot.settings, settings.overridden.contains(.firstByteTimeoutSeconds) else {
            return firstByteTimeout
        }
        return .seconds(Int64(settings.firstByteTimeoutSeconds))
    }

    /// The connect timeout set live, if any (else the pool's configured one applies).
    func connectTimeout(_ snapshot: RoutingSnapshot) -> TimeAmount? {
        guard let settings = snapshot.settings, settings.overridden.contains(.upstreamConnectTimeoutSeconds) else {
            return nil
        }
        return .seconds(Int64(settings.upstreamConnectTimeoutSeconds))
    }

    /// What the chat history keeps (`OPENAI_PROXY_CHAT_HISTORY`): capture the texts only when `.full`.
    var chatHistory: ChatHistoryMode { recording.enabled ? recording.chatHistory : .off }

    /// Size each chat-history text is cut to (`OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES`).
    var chatHistoryMaxBytes: Int { recording.chatHistoryMaxBytes }

    /// Sends the usage row of a finished exchange to the collector. Call it before the answer's end is
    /// written: the row is then in the kernel's hands (socket or spool) before the client sees the end.
    /// With `channel`, the row leaves with the others of this event-loop tick and the sender flushes
    /// `channel` right after: true then, and the caller writes the end without flushing it.
    @discardableResult
    func report(_ exchange: ProxyExchange, status: Int, error: String?, flushing channel: (any Channel)? = nil) -> Bool
    {
        guard recording.enabled else { return false }
        var usage = exchange.sniffer?.finish()
        if usage == nil, exchange.key != nil, let sniffer = exchange.sniffer, sniffer.mode == .eventStream {
            // A stream that ended without its usage event (cancelled, cut): an estimate, marked as such —
            // about one token per event (OpenAI streams a token per chunk), four bytes of request per
            // prompt token.
            let completion = sniffer.dataEvents
            let prompt = (exchange.requestBytes + 3) / 4
            usage = TokenUsage(promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion)
            exchange.tokensEstimated = true
        }
        if exchange.chatResponse == nil, var transcript = exchange.transcript {
            exchange.chatResponse = transcript.finish()
        }
        var row = UsageRow(
            requestID: exchange.requestID, timestamp: exchange.timestamp, worker: worker, keyID: exchange.key?.id,
            tokenID: exchange.tokenID, model: exchange.model, method: exchange.method, path: exchange.path,
            status: status, latencyMs: exchange.milliseconds(), ttfbMs: exchange.ttfbMs,
            streamed: exchange.sniffer?.mode == .eventStream, promptTokens: usage?.promptTokens,
            completionTokens: usage?.completionTokens, totalTokens: usage?.totalTokens, error: error,
            tokensEstimated: exchange.tokensEstimated)
        // Proxied traffic only: a request that reached an upstream key.
        let mode = chatHistory
        if mode != .off, exchange.key != nil, !exchange.fromConsole, ChatHistoryMode.recordsPath(exchange.path) {
            row.keepsChatHistory = true
            if mode == .full {
                let limit = recording.chatHistoryMaxBytes
                row.chatRequest = exchange.chatRequest.map { UsageWire.truncated($0, bytes: limit) }
                row.chatResponse = exchange.chatResponse.map { UsageWire.truncated($0, bytes: limit) }
            }
        }
        guard let channel else {
            self.usage.record(row)
            return false
        }
        self.usage.record(row, flushing: channel)
        return true
    }
}

/// What a worker records of each request: `OPENAI_PROXY_USAGE` and the chat-history settings.
struct UsageRecording: Sendable {
    /// Whether usage rows are recorded at all.
    var enabled = true
    /// What the chat history keeps.
    var chatHistory = ChatHistoryMode.metadata
    /// Size each chat-history text is cut to.
    var chatHistoryMaxBytes = 32 * 1024

    /// The settings of `configuration`.
    init(_ configuration: ProxyConfiguration) {
        enabled = configuration.usageEnabled
        chatHistory = configuration.chatHistory
        chatHistoryMaxBytes = configuration.chatHistoryMaxBytes
    }

    /// The defaults.
    init() {}
}

/// One upstream pool per event loop of the worker.
struct UpstreamPools: Sendable {
    /// Where every pool connects.
    let target: UpstreamTarget
    private let pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>]

    /// Pools for every loop of `group`, each made on its own loop.
    init(
        group: any EventLoopGroup, target: UpstreamTarget, connectTimeout: TimeAmount, readTimeout: TimeAmount
    )
        async throws
    {
        var pools: [ObjectIdentifier: NIOLoopBound<UpstreamPool>] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = try await loop.submit {
                NIOLoopBound(
                    UpstreamPool(loop: loop, target: target, connectTimeout: connectTimeout, readTimeout: readTimeout),
                    eventLoop: loop)
            }.get()
        }
        self.pools = pools
        self.target = target
    }

    /// The pool of `loop`; call on that loop.
    func pool(for loop: any EventLoop) -> UpstreamPool {
        guard let pool = pools[ObjectIdentifier(loop)] else {
            preconditionFailure("no upstream pool for this event loop")
        }
        return pool.value
    }
}

/// One request as it goes through the worker: what the usage row will say.
final class ProxyExchange {
    let requestID: String
    let started = ContinuousClock.now
    let timestamp: Int64
    let method: String
    let path: String
    var tokenID: Int64?
    var key: RoutableKey?
    var model: String?
    var ttfbMs: Double?
    var sniffer: UsageSniffer?
    /// The answer's text, kept only when the chat history stores texts.
    var transcript: AnswerTranscript?
    /// Size of the request body as the client sent it.
    var requestBytes = 0
    /// Sent by the admin console's chat, which keeps its own history.
    var fromConsole = false
    /// True when the handler estimated the token counts (the upstream sent no `usage`).
    var tokensEstimated = false
    /// The request's messages, captured by the handler when `core.chatHistory == .full`.
    var chatRequest: String?
    /// The answer's text (reassembled from the events of a stream), captured when `core.chatHistory == .full`.
    var chatResponse: String?

    init(requestID: String, method: String, path: String) {
        self.requestID = requestID
        self.method = method
        self.path = path
        timestamp = WallClock.nowMs()
    }

    /// Milliseconds since the request arrived.
    func milliseconds() -> Double {
        (ContinuousClock.now - started).inMilliseconds
    }
}
