import Logging
import NIOCore
import NIOHTTP1
import RequestScanning
import Shared

/// What every connection of a worker shares: configuration, the routing snapshots (with the request settings
/// resolved for each), key health, the usage sender and the upstream pools. Immutable after start;
/// everything in it is thread-safe.
final class WorkerContext: Sendable {
    let worker: Int
    let upstream: UpstreamBaseURL
    /// The routing snapshot and request settings in force; a request reads them once.
    let snapshots: SnapshotStore
    /// Key health as this worker sees it; picks the keys a request may use.
    let health: KeyHealthBoard
    let usage: UsageSender
    /// Per-minute request counts of client tokens with a limit, shared by every worker.
    let rateWindows: any TokenRateWindowing
    let requestIDs = RequestIDs()
    let pools: UpstreamPools
    let logger: Logger
    /// What usage is recorded: on or off, and what the chat history keeps.
    let recording: UsageRecording
    /// Requests refused before a token was known, counted per minute.
    let refused: RefusedRequests
    /// In-flight reservations against client tokens' quotas, shared by every worker.
    let quotaReservations: (any TokenQuotaReserving)?
    /// On PostgreSQL, the database's reach: token limit counts are bounded by it and skipped in an outage.
    let reachability: DatabaseReachability?
    /// `{"status":"ok","worker":N}` and its degraded form, the health answers, made once.
    private let healthAnswers: (ok: String, degraded: String)
    /// The objects created through the gateway, with their key and client token.
    let objects: ObjectDirectory
    /// How long an object's record is kept, in milliseconds (`OPENAI_PROXY_OBJECT_RETENTION_DAYS`).
    let objectRetentionMs: Int64

    init(
        worker: Int, upstream: UpstreamBaseURL, snapshots: SnapshotStore, health: KeyHealthBoard, usage: UsageSender,
        rateWindows: any TokenRateWindowing, pools: UpstreamPools, logger: Logger,
        recording: UsageRecording = UsageRecording(), refused: RefusedRequests? = nil,
        quotaReservations: (any TokenQuotaReserving)? = nil, objects: ObjectDirectory = ObjectDirectory(),
        objectRetentionDays: Int = 30, reachability: DatabaseReachability? = nil
    ) {
        self.worker = worker
        self.upstream = upstream
        self.snapshots = snapshots
        self.health = health
        self.usage = usage
        self.rateWindows = rateWindows
        self.pools = pools
        self.logger = logger
        self.recording = recording
        self.refused =
            refused ?? RefusedRequests(source: "w\(worker)", usage: recording.enabled ? usage : nil, logger: logger)
        self.quotaReservations = quotaReservations
        self.reachability = reachability
        healthAnswers = (
            ServiceHealth.body(worker: worker, databaseUnreachable: false),
            ServiceHealth.body(worker: worker, databaseUnreachable: true)
        )
        self.objects = objects
        objectRetentionMs = Int64(objectRetentionDays) * 86_400_000
    }

    /// The `/healthz` body: degraded while this worker knows PostgreSQL is unreachable (no database call).
    var healthAnswer: String {
        reachability?.isUnreachable == true ? healthAnswers.degraded : healthAnswers.ok
    }

    /// Takes in what a request's 2xx answer did to objects: the object a create call made is bound to the key
    /// and client token of the request (here at once, in every worker once the collector stored it); a deleted
    /// one is forgotten. Whether usage is recorded or not, objects are.
    func learn(_ call: ObjectPath.Call, from draft: UsageDraft) {
        switch call {
        case .create:
            guard let created = draft.sniffer?.createdObject, let key = draft.key, let token = draft.tokenID else {
                return
            }
            learnCreated(created, key: key.id, token: token, at: draft.timestamp)
        case .delete(let id):
            forgetObject(id)
        }
    }

    /// Drops the record of an object the upstream no longer has (deleted outside the gateway), here and in the
    /// database.
    func forgetObject(_ id: String) {
        objects.forget(id)
        usage.record(.deleted(id: id))
    }

    /// Binds an object created through `key` for client `token` at `now` (Unix ms): here at once, in every
    /// worker once the collector stored it. An id already known keeps its first record.
    func learnCreated(_ created: CreatedObject, key: Int64, token: Int64, at now: Int64) {
        let object = StoredObject(
            id: created.id, kind: created.kind, keyID: key, tokenID: token, createdAt: now,
            expiresAt: now + objectRetentionMs)
        guard objects.learn(object) else { return }
        usage.record(.created(object))
    }

    /// What the chat history keeps (`OPENAI_PROXY_CHAT_HISTORY`): capture the texts only when `.full`.
    var chatHistory: ChatHistoryMode { recording.enabled ? recording.chatHistory : .off }

    /// Size each chat-history text is cut to (`OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES`).
    var chatHistoryMaxBytes: Int { recording.chatHistoryMaxBytes }

    /// Sends the usage row of a finished request to the collector. Call it before the answer's end is
    /// written: the row is then in the kernel's hands (socket or spool) before the client sees the end.
    /// With `channel`, the row leaves with the others of this event-loop tick and the sender flushes
    /// `channel` right after: true then, and the caller writes the end without flushing it. `reported`: usage
    /// read elsewhere (a WebSocket's response event), taken instead of the draft's sniffer.
    @discardableResult
    func record(
        _ draft: inout UsageDraft, _ outcome: RequestOutcome, now: ContinuousClock.Instant,
        flushing channel: (any Channel)? = nil, usage reported: TokenUsage? = nil
    ) -> Bool {
        guard recording.enabled else { return false }
        var usage = reported ?? draft.sniffer?.finish()
        var estimated = false
        if usage == nil, draft.key != nil, let sniffer = draft.sniffer, sniffer.mode == .eventStream {
            // A stream that ended without its usage event (cancelled, cut): an estimate, marked as such —
            // about one token per event (OpenAI streams a token per chunk), four bytes of request per
            // prompt token.
            let completion = sniffer.dataEvents
            let prompt = (draft.requestBytes + 3) / 4
            usage = TokenUsage(promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion)
            estimated = true
        }
        var row = UsageRow(
            requestID: draft.requestID, timestamp: draft.timestamp, worker: worker, keyID: draft.key?.id,
            tokenID: draft.tokenID, model: draft.model, method: draft.method, path: draft.path,
            status: outcome.status, latencyMs: draft.milliseconds(at: now), ttfbMs: draft.ttfbMs,
            streamed: draft.sniffer?.mode == .eventStream, promptTokens: usage?.promptTokens,
            completionTokens: usage?.completionTokens, totalTokens: usage?.totalTokens, error: outcome.error,
            tokensEstimated: estimated, cachedTokens: usage?.cachedTokens, reasoningTokens: usage?.reasoningTokens,
            audioInputTokens: usage?.audioInputTokens, audioOutputTokens: usage?.audioOutputTokens)
        // Proxied traffic only: a request that reached an upstream key.
        let mode = chatHistory
        if mode != .off, draft.key != nil, !draft.fromConsole, ChatHistoryMode.recordsPath(draft.path) {
            row.keepsChatHistory = true
            if mode == .full {
                let limit = recording.chatHistoryMaxBytes
                row.chatRequest = draft.chatRequest.map { UsageWire.truncated($0, bytes: limit) }
                row.chatResponse = draft.transcript?.finish().map { UsageWire.truncated($0, bytes: limit) }
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
    var chatHistory = ChatHistoryMode.off
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
