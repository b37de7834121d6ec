import Foundation

/// A value in an audit entry's detail; there is deliberately no case that could carry a key value, only
/// what the API shows anyway (hints, names, limits).
enum AuditValue: Encodable, Sendable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case strings([String])
    case null

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .strings(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    /// `detail` as compact JSON with sorted keys.
    static func json(_ detail: [String: AuditValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings, integers and booleans always encode.
        return String(decoding: try! encoder.encode(detail), as: UTF8.self)
    }
}

extension Optional where Wrapped == Int64 {
    /// The value, or `null`.
    var audit: AuditValue { map(AuditValue.int) ?? .null }
}
