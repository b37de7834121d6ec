import Foundation
import PostgresNIO

/// Upstream keys on PostgreSQL; behaves as `KeyStore` does on SQLite (`models` as the same JSON text).
public struct PostgresKeyStore: KeyStoring {
    /// The shared database.
    public let database: PostgresProxyDatabase
    /// Seals and opens key values.
    public let box: SecretBox

    /// A store over `database`, sealing with `box`.
    public init(database: PostgresProxyDatabase, box: SecretBox) {
        self.database = database
        self.box = box
    }

    public func add(name: String, value: String, status: KeyStatus) async throws -> KeyStore.AddResult {
        let name = try KeyStore.validName(name)
        let value = try KeyStore.validValue(value)
        let record = UpstreamKey(name: name, value: value, status: status, box: box)
        return try await database.transaction { connection in try await insert(record, connection) }
    }

    public func importKeys(_ text: String, namePrefix: String) async throws -> KeyStore.ImportSummary {
        let parsed = KeyStore.parseImport(text, namePrefix: namePrefix, box: box)
        var summary = parsed.summary
        let (added, duplicates) = try await database.transaction { connection in
            var added = 0
            var duplicates = 0
            for record in parsed.records {
                if case .added = try await insert(record, connection) { added += 1 } else { duplicates += 1 }
            }
            return (added, duplicates)
        }
        summary.added = added
        summary.duplicates += duplicates
        return summary
    }

    public func list() async throws -> [UpstreamKey] {
        try await database.connection { connection in
            try await Self.keys(
                connection.query("SELECT \(unescaped: Self.columns) FROM keys ORDER BY id", logger: database.logger))
        }
    }

    public func key(id: Int64) async throws -> UpstreamKey? {
        try await database.connection { connection in
            try await Self.keys(
                connection.query(
                    "SELECT \(unescaped: Self.columns) FROM keys WHERE id = \(id)", logger: database.logger)
            ).first
        }
    }

    public func setStatus(id: Int64, _ status: KeyStatus, reason: String?) async throws -> Bool {
        let now = Date()
        let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded())
        return try await database.transaction { connection in
            let logger = database.logger
            var before: String?
            let rows = try await connection.query("SELECT status FROM keys WHERE id = \(id) FOR UPDATE", logger: logger)
            for try await value in rows.decode(String.self) { before = value }
            guard let before else { return false }
            try await connection.query(
                """
                UPDATE keys SET status = \(status.rawValue), status_reason = \(reason), status_code = NULL,
                    status_since = \(nowMs), next_probe_at = NULL, consecutive_failures = 0, cooling_level = 0,
                    updated_at = \(now)
                WHERE id = \(id)
                """, logger: logger)
            if before != status.rawValue {
                try await Self.recordEvent(
                    id: id, from: before, to: status.rawValue, reason: reason ?? "set by an operator", at: nowMs,
                    connection, logger: logger)
            }
            return true
        }
    }

    public func update(id: Int64, name: String?, status: KeyStatus?, audit: AuditEntry?) async throws -> UpstreamKey? {
        precondition(status.map(KeyStatus.operatorSettable.contains) ?? true, "operators set active or disabled only")
        return try await database.transaction { connection in
            let logger = database.logger
            let rows = try await connection.query(
                "SELECT \(unescaped: Self.columns) FROM keys WHERE id = \(id) FOR UPDATE", logger: logger)
            guard var key = try await Self.keys(rows).first else { return nil }
            let now = Date()
            if let name { key.name = name }
            if let status, status != key.status {
                let ms = Int64((now.timeIntervalSince1970 * 1000).rounded())
                try await Self.recordEvent(
                    id: id, from: key.status.rawValue, to: status.rawValue, reason: "set by operator", at: ms,
                    connection, logger: logger)
                key.setByOperator(status, at: ms)
            }
            key.updatedAt = now
            // Every column, as GRDB's record update does (so the same triggers fire on both engines).
            try await connection.query(
                """
                UPDATE keys SET name = \(key.name), key_value = \(key.sealedValue),
                    key_fingerprint = \(key.fingerprint), key_hint = \(key.hint), status = \(key.status.rawValue),
                    status_reason = \(key.statusReason), status_code = \(key.statusCode),
                    status_since = \(key.statusSince), next_probe_at = \(key.nextProbeAt),
                    consecutive_failures = \(key.consecutiveFailures), cooling_level = \(key.coolingLevel),
                    rl_remaining_requests = \(key.rateLimitRemainingRequests),
                    rl_remaining_tokens = \(key.rateLimitRemainingTokens),
                    rl_reset_requests_at = \(key.rateLimitResetRequestsAt),
                    rl_reset_tokens_at = \(key.rateLimitResetTokensAt), rl_updated_at = \(key.rateLimitUpdatedAt),
                    models = \(try Self.json(key.models)), models_checked_at = \(key.modelsCheckedAt),
                    last_probe_at = \(key.lastProbeAt), last_probe_status = \(key.lastProbeStatus),
                    last_probe_latency_ms = \(key.lastProbeLatencyMs), last_probe_error = \(key.lastProbeError),
                    pick_count = \(key.pickCount), usage_count = \(key.usageCount),
                    success_count = \(key.successCount), failure_count = \(key.failureCount),
                    prompt_tokens = \(key.promptTokens), completion_tokens = \(key.completionTokens),
                    last_used = \(key.lastUsed), created_at = \(key.createdAt), updated_at = \(key.updatedAt)
                WHERE id = \(id)
                """, logger: logger)
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: logger) }
            return key
        }
    }

    public func remove(id: Int64, audit: AuditEntry?) async throws -> Bool {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "DELETE FROM keys WHERE id = \(id) RETURNING id", logger: database.logger)
            var removed = false
            for try await _ in rows { removed = true }
            guard removed else { return false }
            if let audit { try await PostgresAuditLog.record(audit, connection, logger: database.logger) }
            return true
        }
    }

    private func insert(_ record: UpstreamKey, _ connection: PostgresConnection) async throws -> KeyStore.AddResult {
        let logger = database.logger
        let rows = try await connection.query(
            """
            INSERT INTO keys (name, key_value, key_fingerprint, key_hint, status, status_since, created_at, updated_at)
            VALUES (\(record.name), \(record.sealedValue), \(record.fingerprint), \(record.hint),
                \(record.status.rawValue), \(record.statusSince), \(record.createdAt), \(record.updatedAt))
            ON CONFLICT (key_fingerprint) DO NOTHING RETURNING id
            """, logger: logger)
        for try await id in rows.decode(Int64.self) {
            var record = record
            record.id = id
            return .added(record)
        }
        let existing = try await connection.query(
            "SELECT id FROM keys WHERE key_fingerprint = \(record.fingerprint)", logger: logger)
        for try await id in existing.decode(Int64.self) { return .duplicate(existingID: id) }
        throw PostgresStoreError.noRowReturned(table: "keys")
    }

    private static func recordEvent(
        id: Int64, from: String, to: String, reason: String, at ms: Int64, _ connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO key_events (ts, key_id, from_status, to_status, reason, status_code)
            VALUES (\(ms), \(id), \(from), \(to), \(reason), NULL)
            """, logger: logger)
    }

    private static let columns = """
        id, name, key_value, key_fingerprint, key_hint, status, status_reason, status_code, status_since,
        next_probe_at, consecutive_failures, cooling_level, rl_remaining_requests, rl_remaining_tokens,
        rl_reset_requests_at, rl_reset_tokens_at, rl_updated_at, models, models_checked_at, last_probe_at,
        last_probe_status, last_probe_latency_ms, last_probe_error, pick_count, usage_count, success_count,
        failure_count, prompt_tokens, completion_tokens, last_used, created_at, updated_at
        """

    /// `models` as SQLite's GRDB stores it: JSON text, or NULL.
    private static func json(_ models: [String]?) throws -> String? {
        try models.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
    }

    private static func keys(_ rows: PostgresRowSequence) async throws -> [UpstreamKey] {
        var keys: [UpstreamKey] = []
        for try await row in rows { keys.append(try UpstreamKey(row: row.makeRandomAccess())) }
        return keys
    }
}

extension UpstreamKey {
    /// A key as a PostgreSQL row of `keys` holds it.
    fileprivate init(row cells: PostgresRandomAccessRow) throws {
        func value<T: PostgresDecodable>(_ column: String, _: T.Type = T.self) throws -> T {
            try cells[column].decode(T.self)
        }
        guard let status = KeyStatus(rawValue: try value("status")) else {
            throw PostgresStoreError.unreadableValue(table: "keys", column: "status")
        }
        id = try value("id", Int64.self)
        name = try value("name")
        sealedValue = try value("key_value")
        fingerprint = try value("key_fingerprint")
        hint = try value("key_hint")
        self.status = status
        statusReason = try value("status_reason")
        statusCode = try value("status_code")
        statusSince = try value("status_since")
        nextProbeAt = try value("next_probe_at")
        consecutiveFailures = try value("consecutive_failures")
        coolingLevel = try value("cooling_level")
        rateLimitRemainingRequests = try value("rl_remaining_requests")
        rateLimitRemainingTokens = try value("rl_remaining_tokens")
        rateLimitResetRequestsAt = try value("rl_reset_requests_at")
        rateLimitResetTokensAt = try value("rl_reset_tokens_at")
        rateLimitUpdatedAt = try value("rl_updated_at")
        models = try value("models", String?.self).map { try JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        modelsCheckedAt = try value("models_checked_at")
        lastProbeAt = try value("last_probe_at")
        lastProbeStatus = try value("last_probe_status")
        lastProbeLatencyMs = try value("last_probe_latency_ms")
        lastProbeError = try value("last_probe_error")
        pickCount = try value("pick_count")
        usageCount = try value("usage_count")
        successCount = try value("success_count")
        failureCount = try value("failure_count")
        promptTokens = try value("prompt_tokens")
        completionTokens = try value("completion_tokens")
        lastUsed = try value("last_used")
        createdAt = try value("created_at")
        updatedAt = try value("updated_at")
    }
}
