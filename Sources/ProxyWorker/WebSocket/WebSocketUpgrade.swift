import Foundation
import NIOHTTP1
import Shared

/// A client's request to open a WebSocket on a path the proxy relays (`/v1/realtime`, the Responses API's
/// WebSocket mode on `/v1/responses`): what the handshake asked for, read from the request head alone.
struct WebSocketUpgrade: Equatable {
    /// The subprotocol prefix browsers use to send an API key (they cannot set `Authorization`).
    static let tokenProtocolPrefix = "openai-insecure-api-key."

    /// The client token sent as an `openai-insecure-api-key.<token>` subprotocol, if any.
    let subprotocolToken: String?
    /// The subprotocols offered, without the one that carries the token: these go upstream.
    let offeredProtocols: [String]
    /// The `model` query parameter (Realtime names its model there).
    let queryModel: String?

    /// The upgrade `head` asks for, when it is a WebSocket handshake (`GET`, `Upgrade: websocket`) on a relayed
    /// `path`; nil for anything else.
    init?(head: HTTPRequestHead, path: Substring, query: Substring?) {
        // The paths whose upgrades are relayed; any other path's `Upgrade` is dropped as hop-by-hop.
        guard head.method == .GET, path == "/v1/realtime" || path == "/v1/responses",
            head.headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" })
        else { return nil }
        var token: String?
        var offered: [String] = []
        for value in head.headers[canonicalForm: "sec-websocket-protocol"] {
            let name = String(value)
            if name.hasPrefix(Self.tokenProtocolPrefix) {
                let rest = name.dropFirst(Self.tokenProtocolPrefix.count)
                if !rest.isEmpty { token = String(rest) }
            } else if !name.isEmpty {
                offered.append(name)
            }
        }
        subprotocolToken = token
        offeredProtocols = offered
        queryModel = query.flatMap { Self.parameter("model", in: $0) }
    }

    /// The decoded value of `name` in a query string, nil when absent or empty.
    static func parameter(_ name: String, in query: Substring) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == name else { continue }
            let value = String(parts[1]).replacingOccurrences(of: "+", with: " ")
            let decoded = value.removingPercentEncoding ?? value
            return decoded.isEmpty ? nil : decoded
        }
        return nil
    }

    /// The handshake's headers as they go upstream: `forwarded` (the client's headers after the usual
    /// forwarding, the key's `Authorization` in) with the upgrade asked for again, the token's subprotocol taken
    /// out and no extensions offered (the relay reads frames, so they must not be compressed).
    func upstreamHeaders(_ forwarded: HTTPHeaders) -> HTTPHeaders {
        var headers = forwarded
        headers.remove(name: "sec-websocket-protocol")
        headers.remove(name: "sec-websocket-extensions")
        headers.add(name: "connection", value: "Upgrade")
        headers.add(name: "upgrade", value: "websocket")
        if !offeredProtocols.isEmpty {
            headers.add(name: "sec-websocket-protocol", value: offeredProtocols.joined(separator: ", "))
        }
        return headers
    }

    /// The `101` the client gets, from the upstream's: its accept value (computed from the client's own key,
    /// which went upstream unchanged) and its chosen subprotocol when the client offered it.
    func clientHeaders(fromUpstream upstream: HTTPHeaders) -> HTTPHeaders {
        var headers = HTTPHeaders([("upgrade", "websocket"), ("connection", "Upgrade")])
        if let accept = upstream.first(name: "sec-websocket-accept") {
            headers.add(name: "sec-websocket-accept", value: accept)
        }
        if let chosen = upstream.first(name: "sec-websocket-protocol")?.trimmingWhitespace(),
            offeredProtocols.contains(chosen)
        {
            headers.add(name: "sec-websocket-protocol", value: chosen)
        }
        return headers
    }
}
