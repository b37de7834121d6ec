import AsyncHTTPClient
import Foundation
import HTTPServing
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Shared

/// Forwards one `/v1/*` request: authenticates the client token, picks an upstream key, sends the request
/// upstream and streams the answer back as it arrives, then reports a usage row.
struct ProxyHandler: Sendable {
    let upstream: UpstreamBaseURL
    let client: HTTPClient
    let snapshots: SnapshotStore
    let selector: KeySelector
    let usage: UsageSender
    let worker: Int
    let maxBodyBytes: Int
    let logger: Logger
    let requestIDs = RequestIDs()

    /// Non-streamed answers up to this size are read whole and sent in one write; larger ones and event
    /// streams are passed through chunk by chunk.
    static let wholeAnswerLimit = 256 * 1024

    /// What the handler learned about a request, carried into its usage row.
    private struct Exchange {
        let requestID: String
        let started = ContinuousClock.now
        let timestamp = Int64(Date().timeIntervalSince1970 * 1000)
        let method: String
        let path: String
        var tokenID: Int64?
        var keyID: Int64?
        var model: String?

        func milliseconds(since instant: ContinuousClock.Instant = ContinuousClock.now) -> Double {
            (instant - started).inMilliseconds
        }
    }

    func handle(_ request: Request) async -> Response {
        let target = request.uri.string
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        var exchange = Exchange(requestID: requestIDs.next(), method: request.method.rawValue, path: path)

        // Authentication comes first: nothing else is revealed to an unknown caller.
        let snapshot = snapshots.snapshot
        guard let token = Self.bearerToken(request.headers[.authorization]),
            let tokenID = snapshot.tokens[SecretDigest.sha256Hex(token)]
        else {
            let message =
                request.headers[.authorization] == nil
                ? "Missing bearer token. Send your proxy token as 'Authorization: Bearer <token>'."
                : "Incorrect or revoked proxy token."
            return fail(
                exchange, status: .unauthorized,
                ErrorBody(
                    message: message, type: "invalid_request_error", code: "invalid_api_key"), error: "unauthorized")
        }
        exchange.tokenID = tokenID

        guard let upstreamPath = Self.upstreamPath(path) else {
            return fail(
                exchange, status: .badRequest,
                ErrorBody(
                    message: "Invalid request path \(path).", type: "invalid_request_error", code: "invalid_path"),
                error: "invalid_path")
        }

        // The body is read whole (up to the limit): its model is recorded, and it must be replayable.
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            return tooLarge(exchange)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return tooLarge(exchange)
        } catch {
            return fail(
                exchange, status: .badRequest,
                ErrorBody(
                    message: "Could not read the request body.", type: "invalid_request_error", code: "body_read_error"),
                error: "body_read_error")
        }
        exchange.model = Self.model(in: body, contentType: request.headers[.contentType])

        let key: RoutableKey
        do {
            guard let picked = try await selector.pick(from: snapshot.keys) else {
                return fail(
                    exchange, status: .serviceUnavailable,
                    ErrorBody(
                        message: "No upstream API key is available. Add one with `openai-proxy keys add`.",
                        type: "server_error", code: "no_available_key"), error: "no_available_key")
            }
            key = picked
        } catch {
            logger.error("key selection failed: \(error)")
            return fail(
                exchange, status: .internalServerError,
                ErrorBody(
                    message: "The proxy could not select an upstream key.", type: "server_error",
                    code: "key_selection_failed"), error: "key_selection_failed")
        }
        exchange.keyID = key.id

        var outgoing = HTTPClientRequest(url: upstream.url(forPath: upstreamPath, query: request.uri.query))
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        outgoing.headers = ForwardedHeaders.upstream(from: request.headers, key: key.value)
        if body.readableBytes > 0 || request.method == .post || request.method == .put || request.method == .patch {
            outgoing.body = .bytes(body)
        }

        let answer: HTTPClientResponse
        do {
            // No per-request deadline timer: the client's read timeout (idle time between bytes) bounds
            // a silent upstream, and a non-streamed answer's head comes when the answer is done.
            answer = try await client.execute(outgoing, deadline: .distantFuture)
        } catch {
            return upstreamFailed(exchange, key: key, error: error)
        }
        let ttfb = exchange.milliseconds()
        let headers = ForwardedHeaders.downstream(from: answer.headers)
        let status = Int(answer.status.code)
        let contentType = answer.headers.first(name: "content-type")
        var sniffer = UsageSniffer(contentType: contentType)
        let streamed = sniffer.mode == .eventStream
        let finished = exchange

        if !streamed, let length = answer.headers.first(name: "content-length").flatMap(Int.init),
            length <= Self.wholeAnswerLimit
        {
            // The upstream sends a small answer at once: read it whole and answer in one write.
            do {
                let whole = try await answer.body.collect(upTo: length)
                sniffer.consumeWhole(whole)
                report(finished, status: status, ttfb: ttfb, streamed: false, usage: sniffer.finish(), error: nil)
                return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: whole))
            } catch {
                logger.info("upstream answer ended early", metadata: ["key.hint": "\(key.hint)", "error": "\(error)"])
                return fail(
                    finished, status: .badGateway,
                    ErrorBody(
                        message: "The upstream \(upstream.host) closed the connection mid-answer.",
                        type: "server_error", code: "upstream_incomplete"), error: "upstream_incomplete")
            }
        }

        let responseBody = ResponseBody { [sniffer] writer in
            var sniffer = sniffer
            var failure: String?
            do {
                for try await chunk in answer.body {
                    sniffer.consume(chunk)
                    do {
                        try await writer.write(chunk)
                    } catch {
                        failure = "client_cancelled"
                        throw error
                    }
                }
                try await writer.finish(nil)
            } catch {
                if failure == nil { failure = "upstream_stream_error" }
                self.logger.info(
                    "stream ended early", metadata: ["reason": "\(failure!)", "key.hint": "\(key.hint)"])
                self.report(
                    finished, status: status, ttfb: ttfb, streamed: streamed, usage: sniffer.finish(), error: failure)
                throw error
            }
            self.report(finished, status: status, ttfb: ttfb, streamed: streamed, usage: sniffer.finish(), error: nil)
        }
        return Response(status: .init(code: status), headers: headers, body: responseBody)
    }

    // MARK: - Outcomes

    private func fail(_ exchange: Exchange, status: HTTPResponse.Status, _ body: ErrorBody, error: String) -> Response {
        report(exchange, status: Int(status.code), ttfb: nil, streamed: false, usage: nil, error: error)
        var headers: HTTPFields = [:]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return body.response(status: status, headers: headers)
    }

    private func tooLarge(_ exchange: Exchange) -> Response {
        fail(
            exchange, status: .contentTooLarge,
            ErrorBody(
                message:
                    "Request body is larger than the limit of \(maxBodyBytes) bytes (OPENAI_PROXY_MAX_BODY_BYTES).",
                type: "invalid_request_error", code: "request_too_large"), error: "request_too_large")
    }

    private func upstreamFailed(_ exchange: Exchange, key: RoutableKey, error: any Error) -> Response {
        let host = upstream.host
        let timedOut = (error as? HTTPClientError) == .deadlineExceeded || (error as? HTTPClientError) == .readTimeout
        logger.warning(
            "upstream request failed",
            metadata: ["upstream.host": "\(host)", "key.hint": "\(key.hint)", "error": "\(error)"])
        if timedOut {
            return fail(
                exchange, status: .gatewayTimeout,
                ErrorBody(
                    message: "The upstream \(host) did not answer in time.", type: "server_error",
                    code: "upstream_timeout"), error: "upstream_timeout")
        }
        return fail(
            exchange, status: .badGateway,
            ErrorBody(
                message: "The upstream \(host) is unreachable: \(Self.describe(error)).", type: "server_error",
                code: "upstream_unreachable"), error: "upstream_unreachable")
    }

    private func report(
        _ exchange: Exchange, status: Int, ttfb: Double?, streamed: Bool, usage tokens: TokenUsage?, error: String?
    ) {
        usage.record(
            UsageRow(
                requestID: exchange.requestID, timestamp: exchange.timestamp, worker: worker,
                keyID: exchange.keyID, tokenID: exchange.tokenID, model: exchange.model,
                method: exchange.method, path: exchange.path, status: status,
                latencyMs: exchange.milliseconds(), ttfbMs: ttfb, streamed: streamed,
                promptTokens: tokens?.promptTokens, completionTokens: tokens?.completionTokens,
                totalTokens: tokens?.totalTokens, error: error))
    }

    // MARK: - Parsing

    /// The token in `Bearer <token>`, or nil.
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = String(parts[1]).trimmingWhitespace()
        return token.isEmpty ? nil : token
    }

    /// The path below `/v1` (`/v1/chat/completions` → `/chat/completions`), or nil when it is not a clean
    /// `/v1` path (dot segments could escape the upstream's prefix).
    static func upstreamPath(_ path: String) -> String? {
        guard path == "/v1" || path.hasPrefix("/v1/") else { return nil }
        let rest = String(path.dropFirst(3))
        // Only a path with a dot or an escape can hold a dot segment.
        guard rest.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "%") }) else { return rest }
        for segment in rest.split(separator: "/", omittingEmptySubsequences: false) {
            let decoded = segment.replacingOccurrences(of: "%2e", with: ".", options: .caseInsensitive)
            if decoded == "." || decoded == ".." { return nil }
        }
        return rest
    }

    /// The `model` of a JSON request body, when it has one.
    static func model(in body: ByteBuffer, contentType: String?) -> String? {
        guard body.readableBytes > 0, contentType?.lowercased().contains("json") ?? true else { return nil }
        guard let model = body.withUnsafeReadableBytes({ JSONScanner.topLevelString("model", in: $0) }) else {
            return nil
        }
        return String(model.prefix(200))
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "connection closed by the upstream"
            default: return "\(error)"
            }
        }
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.first.map { "\($0.error)" } ?? "connection failed"
        }
        return "\(error)"
    }
}
