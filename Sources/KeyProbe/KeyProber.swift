import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Shared

/// Probes one upstream key with cheap calls: `GET /models` (is the key accepted, which models does it
/// reach) and, for a key out of quota, a 1-token completion (has credit come back).
public struct KeyProber: Sendable {
    /// Where the upstream is.
    public let upstream: UpstreamBaseURL
    /// Model of the quota probe.
    public let probeModel: String
    /// Longest time one call may take.
    public let timeout: TimeAmount
    private let client: HTTPClient

    /// A prober against `upstream`.
    public init(
        upstream: UpstreamBaseURL, probeModel: String, timeout: TimeAmount = .seconds(20),
        client: HTTPClient = .shared
    ) {
        self.upstream = upstream
        self.probeModel = probeModel
        self.timeout = timeout
        self.client = client
    }

    /// Probes `value`, a key now in `status`; never throws: failures are part of the record.
    public func probe(value: String, status: KeyStatus) async -> KeyHealthStore.ProbeRecord {
        let started = ContinuousClock.now
        func elapsed() -> Double { (ContinuousClock.now - started).inMilliseconds }

        let listing = await call("GET", path: "/models", key: value, body: nil)
        guard case .answer(let code, let headers, let body) = listing else {
            return record(listing, latency: elapsed(), models: nil)
        }
        let outcome = UpstreamVerdict.outcome(status: code, body: body, header: { headers.first(name: $0) })
        guard outcome == .success else {
            return KeyHealthStore.ProbeRecord(
                outcome: outcome, status: code, latencyMs: elapsed(), models: nil, error: Self.describe(code, body))
        }
        // An upstream without a model list (404, 405 …) accepted the key as far as it tells; its models stay
        // unknown, so the key may serve any model.
        let models = (200..<300).contains(code) ? Self.modelIDs(body) : nil
        guard status == .quotaExhausted else {
            return KeyHealthStore.ProbeRecord(
                outcome: .success, status: code, latencyMs: elapsed(), models: models, error: nil)
        }
        // The model list answers even without credit: only a completion tells whether the quota is back.
        let request =
            #"{"model":"# + Self.quoted(probeModel) + #","messages":[{"role":"user","content":"ping"}],"max_tokens":1}"#
        let completion = await call("POST", path: "/chat/completions", key: value, body: request)
        guard case .answer(let status, let headers, let body) = completion else {
            return record(completion, latency: elapsed(), models: models)
        }
        let verdict = UpstreamVerdict.outcome(status: status, body: body, header: { headers.first(name: $0) })
        return KeyHealthStore.ProbeRecord(
            outcome: verdict, status: status, latencyMs: elapsed(), models: models,
            error: verdict == .success ? nil : Self.describe(status, body))
    }

    private enum CallResult {
        case answer(Int, HTTPHeaders, [UInt8])
        case failed(String)
    }

    private func call(_ method: String, path: String, key: String, body: String?) async -> CallResult {
        do {
            var request = HTTPClientRequest(url: upstream.url(forPath: path))
            request.method = HTTPMethod(rawValue: method)
            request.headers.add(name: "authorization", value: "Bearer " + key)
            if let body {
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 8 << 20)
            return .answer(Int(response.status.code), response.headers, Array(buffer: bytes))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return .failed("no answer within \(timeout.nanoseconds / 1_000_000_000) s")
        } catch {
            return .failed("\(error)")
        }
    }

    private func record(_ result: CallResult, latency: Double, models: [String]?) -> KeyHealthStore.ProbeRecord {
        switch result {
        case .answer(let status, _, let body):
            return KeyHealthStore.ProbeRecord(
                outcome: .transient(status: status, reason: "probe answered \(status)"), status: status,
                latencyMs: latency, models: models, error: Self.describe(status, body))
        case .failed(let reason):
            return KeyHealthStore.ProbeRecord(
                outcome: .transient(status: nil, reason: reason), status: 0, latencyMs: latency, models: models,
                error: reason)
        }
    }

    /// The `id` of every entry of an OpenAI model list.
    static func modelIDs(_ body: [UInt8]) -> [String]? {
        struct Listing: Decodable {
            struct Model: Decodable { let id: String }
            let data: [Model]
        }
        guard let listing = try? JSONDecoder().decode(Listing.self, from: Data(body)) else { return nil }
        return listing.data.map(\.id)
    }

    /// `401: Incorrect API key provided` from an error answer.
    static func describe(_ status: Int, _ body: [UInt8]) -> String {
        struct Failure: Decodable {
            struct Detail: Decodable { let message: String? }
            let error: Detail
        }
        let message = (try? JSONDecoder().decode(Failure.self, from: Data(body)))?.error.message
        let text = (message ?? "no error message").split(whereSeparator: \.isNewline).joined(separator: " ")
        return "\(status): \(text.prefix(200))"
    }

    private static func quoted(_ text: String) -> String {
        // Encoding a string cannot fail.
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }
}
