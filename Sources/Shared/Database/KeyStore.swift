import Foundation
import GRDB

/// Reads and changes upstream keys in the shared database.
public struct KeyStore: Sendable {
    /// The shared database.
    public let database: ProxyDatabase
    /// Seals and opens key values.
    public let box: SecretBox

    /// A store over `database`, sealing with `box`.
    public init(database: ProxyDatabase, box: SecretBox) {
        self.database = database
        self.box = box
    }

    /// The outcome of adding one key.
    public enum AddResult: Sendable, Equatable {
        /// Stored as a new key.
        case added(UpstreamKey)
        /// The same value is already stored under this id.
        case duplicate(existingID: Int64)
    }

    /// Counts from a bulk import.
    public struct ImportSummary: Sendable, Equatable {
        /// Keys stored.
        public var added = 0
        /// Keys already present (or repeated in the input), skipped.
        public var duplicates = 0
        /// Lines that are not a plausible key, with their line numbers.
        public var rejected: [Int] = []
    }

    /// Adds one key; a value already stored is reported, not stored twice.
    public func add(name: String, value: String, status: KeyStatus = .active) async throws -> AddResult {
        let name = try Self.validName(name)
        let value = try Self.validValue(value)
        let record = UpstreamKey(name: name, value: value, status: status, box: box)
        return try await database.pool.write { db in try Self.insert(record, db) }
    }

    /// Adds every key in `text` (one per line; blank lines and `#` comments skipped) in one transaction.
    public func importKeys(_ text: String, namePrefix: String = "imported") async throws -> ImportSummary {
        let parsed = Self.parseImport(text, namePrefix: namePrefix, box: box)
        var summary = parsed.summary
        let stored = parsed.records
        let (added, duplicates) = try await database.pool.write { db in
            var added = 0
            var duplicates = 0
            for record in stored {
                if case .added = try Self.insert(record, db) { added += 1 } else { duplicates += 1 }
            }
            return (added, duplicates)
        }
        summary.added = added
        summary.duplicates += duplicates
        return summary
    }

    /// Every key, oldest first.
    public func list() async throws -> [UpstreamKey] {
        try await database.pool.read { db in try UpstreamKey.order(Column("id")).fetchAll(db) }
    }

    /// Deletes a key; false when no key has that id.
    public func remove(id: Int64) async throws -> Bool {
        try await database.pool.write { db in try UpstreamKey.deleteOne(db, key: id) }
    }

    /// Sets a key's status as an operator (active or disabled), with a `key_events` row; false when no
    /// key has that id. Setting active clears what the health state machine held against the key.
    public func setStatus(id: Int64, _ status: KeyStatus, reason: String? = nil) async throws -> Bool {
        let now = Date()
        let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded())
        return try await database.pool.write { db in
            guard let before = try String.fetchOne(db, sql: "SELECT status FROM keys WHERE id = ?", arguments: [id])
            else { return false }
            try db.execute(
                sql: """
                    UPDATE keys SET status = ?, status_reason = ?, status_code = NULL, status_since = ?,
                    next_probe_at = NULL, consecutive_failures = 0, cooling_level = 0, updated_at = ? WHERE id = ?
                    """,
                arguments: [status, reason, nowMs, now, id])
            if before != status.rawValue {
                try db.execute(
                    sql: """
                        INSERT INTO key_events (ts, key_id, from_status, to_status, reason, status_code)
                        VALUES (?, ?, ?, ?, ?, NULL)
                        """,
                    arguments: [nowMs, id, before, status.rawValue, reason ?? "set by an operator"])
            }
            return true
        }
    }

    private static func insert(_ record: UpstreamKey, _ db: Database) throws -> AddResult {
        if let existing = try Int64.fetchOne(
            db, sql: "SELECT id FROM keys WHERE key_fingerprint = ?", arguments: [record.fingerprint])
        {
            return .duplicate(existingID: existing)
        }
        var record = record
        try record.insert(db)
        return .added(record)
    }

    /// A trimmed, non-empty name of at most 100 characters.
    public static func validName(_ name: String) throws(InputError) -> String {
        let name = name.trimmingWhitespace()
        guard !name.isEmpty else { throw InputError(field: "name", message: "must not be empty") }
        guard name.count <= 100 else { throw InputError(field: "name", message: "must be at most 100 characters") }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw InputError(field: "name", message: "must not contain control characters")
        }
        return name
    }

    /// A plausible API key: 8 to 512 printable ASCII characters without spaces.
    public static func validValue(_ value: String) throws(InputError) -> String {
        let value = value.trimmingWhitespace()
        guard (8...512).contains(value.utf8.count) else {
            throw InputError(field: "key_value", message: "must be 8 to 512 characters")
        }
        guard value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw InputError(field: "key_value", message: "must be printable ASCII without spaces")
        }
        return value
    }
}

/// Input rejected before anything was stored; the description is one line for the operator.
public struct InputError: Error, Equatable, CustomStringConvertible {
    /// The field at fault, as named in the API and CLI.
    public let field: String
    /// What is wrong with it.
    public let message: String

    /// An error about `field`.
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field) \(message)" }
}
