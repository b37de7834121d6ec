/// The `models` table's operations, the same on every engine: `ModelStore` (SQLite) and `PostgresModelStore`,
/// held to one behaviour by one test suite run against both.
public protocol ModelStoring: Sendable {
    /// Every model, by name (byte order).
    func list() async throws -> [ModelEntry]
    /// One model, or nil.
    func get(_ name: String) async throws -> ModelEntry?
    /// The names among `names` that no model has.
    func unknown(_ names: [String]) async throws -> [String]
    /// Stores a new model (and `audit`, in the same transaction); throws `ModelStore.ChangeError.duplicate`
    /// for a known name.
    func create(_ model: ModelEntry, audit: AuditEntry?) async throws
    /// Applies `change` to the model named `name` (and records `audit`); nil when there is none.
    func update(
        _ name: String, audit: AuditEntry?, _ change: @escaping @Sendable (inout ModelEntry) -> Void
    ) async throws -> ModelEntry?
    /// Deletes the model named `name` (and records `audit`); false when there is none.
    func remove(_ name: String, audit: AuditEntry?) async throws -> Bool
    /// Adds the upstream's model ids not known yet (source `upstream`), keeping the others as they are;
    /// returns how many were added.
    func mergeUpstream(_ ids: [String], audit: AuditEntry?) async throws -> Int
}

extension ModelStore: ModelStoring {}
