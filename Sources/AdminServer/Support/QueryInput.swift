import Foundation
import HTTPServing
import Hummingbird

/// Typed query parameters: each bad value is a 400 naming the parameter and what it accepts.
struct QueryInput {
    let parameters: [String: String]

    /// The request's query parameters (the last one wins when a name repeats).
    init(_ request: Request) {
        var parameters: [String: String] = [:]
        for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
        self.parameters = parameters
    }

    /// An integer within `range`, `fallback` when absent.
    func int(_ name: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        try optionalInt(name, in: range) ?? fallback
    }

    /// An integer within `range`, nil when absent.
    func optionalInt(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = parameters[name] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw APIError.invalid(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A 64-bit id (1 or more), nil when absent.
    func id(_ name: String) throws -> Int64? {
        guard let text = parameters[name] else { return nil }
        guard let value = Int64(text), value >= 1 else { throw APIError.invalid(name, "must be a positive integer") }
        return value
    }

    /// One of `choices`, `fallback` when absent.
    func choice(_ name: String, _ choices: [String], default fallback: String) throws -> String {
        guard let text = parameters[name] else { return fallback }
        guard choices.contains(text) else {
            throw APIError.invalid(name, "must be one of \(choices.joined(separator: ", "))")
        }
        return text
    }

    /// `true` or `false`, `fallback` when absent.
    func bool(_ name: String, default fallback: Bool) throws -> Bool {
        guard let text = parameters[name] else { return fallback }
        switch text {
        case "true", "1": return true
        case "false", "0": return false
        default: throw APIError.invalid(name, "must be true or false")
        }
    }

    /// A non-empty string of at most 200 characters, nil when absent.
    func string(_ name: String) throws -> String? {
        guard let text = parameters[name] else { return nil }
        guard !text.isEmpty, text.count <= 200 else { throw APIError.invalid(name, "must be 1 to 200 characters") }
        return text
    }

    /// A time as Unix milliseconds, from an integer (ms) or an ISO 8601 date-time; nil when absent.
    func time(_ name: String) throws -> Int64? {
        guard let text = parameters[name] else { return nil }
        if let ms = Int64(text), ms >= 0 { return ms }
        guard let ms = ISOTime.parse(text) else {
            throw APIError.invalid(name, "must be Unix milliseconds or an ISO 8601 date-time")
        }
        return ms
    }
}

/// ISO 8601 date-times to and from Unix milliseconds.
enum ISOTime {
    /// `2026-01-02T03:04:05.678Z`.
    static func format(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    /// Unix ms of an ISO 8601 date-time with or without fractional seconds; nil when malformed.
    static func parse(_ text: String) -> Int64? {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = fractional.date(from: text) ?? plain.date(from: text) else { return nil }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
