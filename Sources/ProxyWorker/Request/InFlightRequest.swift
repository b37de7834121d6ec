import NIOCore
import NIOHTTP1
import Shared

/// A request in progress on a client connection: what the client sent and what was decided about it.
struct InFlightRequest {
    let head: HTTPRequestHead
    /// What its usage row will say.
    var draft: UsageDraft
    let keepAlive: Bool
    /// The path the upstream is asked for, without its `/v1`.
    var upstreamPath = ""
    var query: Substring?
    /// The client token that authenticated the request.
    var token: TokenEntry?
    var body = ByteBuffer()
    /// Bytes of the worker's body budget this body holds, given back when the request ends.
    var heldBytes = 0
    /// The proxy asked the upstream for the stream's usage: its usage-only event is not passed on.
    var strippingUsage = false
    /// The answer's text is kept for the chat history.
    var keepsTranscript = false
    /// The request's `prompt_cache_key`: it goes to the key rendezvous hashing gives this value among the keys
    /// that can serve it, so requests that share a prompt cache share a key.
    var cacheAffinity: String?
    /// The worker records usage: the answer's token counts are read, and streams are asked for theirs.
    var readsUsage = true
    /// The WebSocket handshake the request is, on a path whose sockets are relayed.
    var webSocket: WebSocketUpgrade?
    /// What the request does to recorded objects: a create call's answer names a new one, a delete removes one.
    var objectCall: ObjectPath.Call?
    /// The token's object the request names: it goes to that object's key alone, never another.
    var pinned: StoredObject?

    /// A request that began with `head`.
    init(head: HTTPRequestHead, draft: UsageDraft) {
        self.head = head
        self.draft = draft
        // After a CONNECT the request parser reads no further requests on the connection (the rest would be a
        // tunnel's bytes): its answer, never a tunnel here, closes it.
        keepAlive = head.isKeepAlive && head.method != .CONNECT
    }
}
