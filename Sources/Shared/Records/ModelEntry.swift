import Foundation
import GRDB

/// A model the gateway offers, as stored in `models`: added by an operator or learned from the upstream.
public struct ModelEntry: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "models"

    /// The model id clients send, such as `gpt-4o-mini`.
    public var name: String
    /// Free text for operators.
    public var description: String
    /// Capability tags such as `chat` or `vision`, stored comma-separated.
    public var capabilities: String
    /// Disabled models are not listed by the proxy's `GET /v1/models`.
    public var enabled: Bool
    /// `manual` (an operator added it) or `upstream` (learned from the upstream's `/v1/models`).
    public var source: String
    /// When it was added.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case description, capabilities, enabled, source, name = "model_name", createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// A model entry; `source` is `manual` unless learned from the upstream.
    public init(
        name: String, description: String = "", capabilities: [String] = [], enabled: Bool = true,
        source: String = "manual", now: Date = Date()
    ) {
        self.name = name
        self.description = description
        self.capabilities = capabilities.joined(separator: ",")
        self.enabled = enabled
        self.source = source
        createdAt = now
        updatedAt = now
    }

    /// The capability tags as a list.
    public var capabilityList: [String] {
        capabilities.split(separator: ",").map(String.init)
    }
}

/// The proxy's own `GET /v1/models` answer, in OpenAI's list format, built from the `models` table.
public enum ModelCatalog {
    /// `{"object":"list","data":[{"id","object":"model","created","owned_by"}…]}` of the enabled models,
    /// sorted by name; `created` is when the model was added (Unix seconds).
    public static func openAIList(_ models: [ModelEntry]) -> String {
        struct Item: Encodable {
            let id: String
            let object = "model"
            let created: Int64
            let ownedBy: String
            enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
        }
        struct List: Encodable {
            let object = "list"
            let data: [Item]
        }
        let items = models.filter(\.enabled).sorted { $0.name < $1.name }.map {
            Item(
                id: $0.name, created: Int64($0.createdAt.timeIntervalSince1970),
                ownedBy: $0.source == "upstream" ? "upstream" : "openai-proxy")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and integers cannot fail.
        return String(decoding: try! encoder.encode(List(data: items)), as: UTF8.self)
    }

    /// Every enabled model, for the worker's snapshot.
    public static func enabledModels(_ db: Database) throws -> [ModelEntry] {
        try ModelEntry.filter(Column("enabled") == true).order(Column("model_name")).fetchAll(db)
    }
}
