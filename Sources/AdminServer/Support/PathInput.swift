import Foundation
import Hummingbird

/// Path parameters, validated.
enum PathInput {
    /// The `{id}` parameter as a positive 64-bit integer, else 400.
    static func id(_ context: AdminRequestContext, _ name: String = "id") throws -> Int64 {
        guard let text = context.parameters.get(name), let id = Int64(text), id >= 1 else {
            throw APIError.invalid(name, "must be a positive integer")
        }
        return id
    }

    /// A string parameter, percent-decoded.
    static func string(_ context: AdminRequestContext, _ name: String) throws -> String {
        guard let raw = context.parameters.get(name) else { throw APIError.invalid(name, "is required") }
        return raw.removingPercentEncoding ?? raw
    }
}
