/// The upstream keys' operations the CLI and the admin API use, the same on every engine: `KeyStore` (SQLite)
/// and `PostgresKeyStore`, held to one behaviour by one test suite run against both.
public protocol KeyStoring: Sendable {
    /// Adds one key; a value already stored is reported, not stored twice.
    func add(name: String, value: String, status: KeyStatus) async throws -> KeyStore.AddResult
    /// Adds every key in `text` (one per line; blank lines and `#` comments skipped) in one transaction.
    func importKeys(_ text: String, namePrefix: String) async throws -> KeyStore.ImportSummary
    /// Every key, oldest first.
    func list() async throws -> [UpstreamKey]
    /// One key, or nil.
    func key(id: Int64) async throws -> UpstreamKey?
    /// Sets a key's status as an operator, with a `key_events` row; false when no key has that id.
    func setStatus(id: Int64, _ status: KeyStatus, reason: String?) async throws -> Bool
    /// Renames a key and/or sets an operator status, with `key_events` and `audit` rows; nil when no key has
    /// that id.
    func update(id: Int64, name: String?, status: KeyStatus?, audit: AuditEntry?) async throws -> UpstreamKey?
    /// Deletes a key and records `audit` in the same transaction; false when no key has that id.
    func remove(id: Int64, audit: AuditEntry?) async throws -> Bool
}

extension KeyStore: KeyStoring {}

extension KeyStore {
    /// The keys `text` holds (one per line; blank lines and `#` comments skipped), sealed with `box`, repeats
    /// counted as duplicates and implausible lines rejected by number; both engines import through it.
    static func parseImport(
        _ text: String, namePrefix: String, box: SecretBox
    ) -> (records: [UpstreamKey], summary: ImportSummary) {
        var summary = ImportSummary()
        var records: [UpstreamKey] = []
        var seen: Set<String> = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(rawLine).trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let value = try? validValue(line) else {
                summary.rejected.append(index + 1)
                continue
            }
            let record = UpstreamKey(name: "\(namePrefix)-\(index + 1)", value: value, status: .active, box: box)
            if seen.insert(record.fingerprint).inserted {
                records.append(record)
            } else {
                summary.duplicates += 1
            }
        }
        return (records, summary)
    }
}
