import Foundation
import Hummingbird
import Shared

/// `/api/settings`: the settings safe to change while the service runs (`LiveSettings`). A change is
/// stored in the `settings` table, which moves the pool generation, so workers pick it up.
struct SettingsRoutes {
    let services: AdminServices

    struct SettingsView: Encodable {
        let rotationStrategy: String
        let maxBodyBytes: Int
        let upstreamConnectTimeoutSeconds: Int
        let firstByteTimeoutSeconds: Int
        /// The names set through the API; the others are the configuration's values.
        let overridden: [String]

        enum CodingKeys: String, CodingKey {
            case overridden, rotationStrategy = "rotation_strategy", maxBodyBytes = "max_body_bytes"
            case upstreamConnectTimeoutSeconds = "upstream_connect_timeout_seconds"
            case firstByteTimeoutSeconds = "first_byte_timeout_seconds"
        }
    }

    private func current() async throws -> SettingsView {
        let overrides = try await services.settings.overrides()
        let settings = LiveSettings.resolved(services.configuration, overrides: overrides)
        return SettingsView(
            rotationStrategy: settings.rotationStrategy.rawValue, maxBodyBytes: settings.maxBodyBytes,
            upstreamConnectTimeoutSeconds: settings.upstreamConnectTimeoutSeconds,
            firstByteTimeoutSeconds: settings.firstByteTimeoutSeconds, overridden: overrides.keys.sorted())
    }

    /// A PUT body: each setting left out (unchanged), `null` (back to the configuration's value) or a value.
    struct UpdateBody: Decodable {
        var changes: [(LiveSetting, String?)] = []

        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
                guard let setting = LiveSetting(rawValue: key.stringValue) else {
                    throw APIError.invalid(
                        key.stringValue,
                        "is not a live setting (\(LiveSetting.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                if try container.decodeNil(forKey: key) {
                    changes.append((setting, nil))
                } else if let text = try? container.decode(String.self, forKey: key) {
                    changes.append((setting, text))
                } else if let number = try? container.decode(Int.self, forKey: key) {
                    changes.append((setting, String(number)))
                } else {
                    throw APIError.invalid(key.stringValue, "must be \(setting.accepts)")
                }
            }
        }
    }

    func register(on api: APIGroup) {
        api.on(.get, "settings") { _, _ in
            try JSONResponse.make(try await current())
        }
        api.on(.put, "settings") { request, context in
            let body = try await JSONBody.decode(UpdateBody.self, from: request, context: context)
            var scratch = LiveSettings.defaults(services.configuration)
            var detail: [String: AuditValue] = [:]
            for (setting, value) in body.changes {
                if let value {
                    // The strategy is a name, the others integers: a number for the strategy is refused.
                    if setting == .rotationStrategy, Int(value) != nil {
                        throw APIError.invalid(setting.rawValue, "must be \(setting.accepts)")
                    }
                    try setting.apply(value, to: &scratch)
                }
                detail[setting.rawValue] = value.map(AuditValue.string) ?? .null
            }
            let changes = body.changes
            let entry = services.auditEntry(context, action: "settings.update", target: nil, detail: detail)
            try await services.settings.change(changes, now: services.now(), audit: changes.isEmpty ? nil : entry)
            return try JSONResponse.make(try await current())
        }
    }
}
