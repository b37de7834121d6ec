import Foundation
import GRDB

/// Reads and changes the `models` table.
public struct ModelStore: Sendable {
    /// The shared database.
    public let database: ProxyDatabase

    /// A store over `database`.
    public init(database: ProxyDatabase) {
        self.database = database
    }

    /// Why a change was refused.
    public enum ChangeError: Error, Equatable {
        /// A model with that name exists already.
        case duplicate
    }

    /// Every model, by name.
    public func list() async throws -> [ModelEntry] {
        try await database.pool.read { db in try ModelEntry.order(Column("model_name")).fetchAll(db) }
    }

    /// One model, or nil.
    public func get(_ name: String) async throws -> ModelEntry? {
        try await database.pool.read { db in try ModelEntry.fetchOne(db, key: name) }
    }

    /// The names among `names` that no model has.
    public func unknown(_ names: [String]) async throws -> [String] {
        let known = try await database.pool.read { db in
            Set(try String.fetchAll(db, sql: "SELECT model_name FROM models"))
        }
        return names.filter { !known.contains($0) }
    }

    /// Stores a new model (and `audit`, in the same transaction); throws `.duplicate` for a known name.
    public func create(_ model: ModelEntry, audit: AuditEntry? = nil) async throws {
        try await database.pool.write { db in
            guard try !ModelEntry.exists(db, key: model.name) else { throw ChangeError.duplicate }
            try model.insert(db)
            if let audit { try AuditLog.record(audit, db) }
        }
    }

    /// Applies `change` to the model named `name` (and records `audit`); nil when there is none.
    public func update(
        _ name: String, audit: AuditEntry? = nil, _ change: @escaping @Sendable (inout ModelEntry) -> Void
    ) async throws -> ModelEntry? {
        try await database.pool.write { db in
            guard var model = try ModelEntry.fetchOne(db, key: name) else { return nil }
            change(&model)
            model.updatedAt = Date()
            try model.update(db)
            if let audit { try AuditLog.record(audit, db) }
            return model
        }
    }

    /// Deletes the model named `name` (and records `audit`); false when there is none.
    public func remove(_ name: String, audit: AuditEntry? = nil) async throws -> Bool {
        try await database.pool.write { db in
            guard try ModelEntry.deleteOne(db, key: name) else { return false }
            if let audit { try AuditLog.record(audit, db) }
            return true
        }
    }

    /// Adds the upstream's model ids not known yet (source `upstream`); models already present, manual or
    /// learned, are kept as they are. Returns how many were added.
    public func mergeUpstream(_ ids: [String], audit: AuditEntry? = nil) async throws -> Int {
        try await database.pool.write { db in
            var added = 0
            for id in Set(ids).sorted() where try !ModelEntry.exists(db, key: id) {
                try ModelEntry(name: id, source: "upstream").insert(db)
                added += 1
            }
            if let audit { try AuditLog.record(audit, db) }
            return added
        }
    }

    /// A model name: 1 to 200 characters without whitespace or control characters.
    public static func validName(_ name: String, field: String = "model_name") throws(InputError) -> String {
        guard !name.isEmpty else { throw InputError(field: field, message: "must not be empty") }
        guard name.count <= 200 else { throw InputError(field: field, message: "must be at most 200 characters") }
        guard
            !name.unicodeScalars.contains(where: {
                $0.properties.isWhitespace || $0.properties.generalCategory == .control
            })
        else { throw InputError(field: field, message: "must not contain whitespace or control characters") }
        return name
    }

    /// Capability tags: at most 20, each 1 to 40 characters of a-z, 0-9, `_` and `-`.
    public static func validCapabilities(_ tags: [String]) throws(InputError) -> [String] {
        guard tags.count <= 20 else { throw InputError(field: "capabilities", message: "must have at most 20 tags") }
        for tag in tags {
            guard (1...40).contains(tag.utf8.count),
                tag.utf8.allSatisfy({
                    ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D
                })
            else {
                throw InputError(
                    field: "capabilities", message: "tags must be 1 to 40 characters of a-z, 0-9, _ and -")
            }
        }
        return tags
    }

    /// A description of at most 1000 characters.
    public static func validDescription(_ text: String) throws(InputError) -> String {
        guard text.count <= 1000 else {
            throw InputError(field: "description", message: "must be at most 1000 characters")
        }
        return text
    }
}
