import Logging
import PostgresNIO
import Shared

extension PostgresUsageStore {
    /// Adds `aggregates` to the hourly and per key × model rows and to the keys' and tokens' counters, each
    /// table's rows in key order (see the type's note on locks).
    static func upsert(_ aggregates: UsageAggregates, _ connection: PostgresConnection, logger: Logger) async throws {
        let hourly = aggregates.hourly.sorted { $0.key < $1.key }.map { (key: $0.key, totals: $0.value) }
        for query in usageHourly.queries(hourly) { try await connection.query(query, logger: logger) }
        let stats = aggregates.perKeyModel.sorted { $0.key < $1.key }.map { (key: $0.key, totals: $0.value) }
        for query in usageStats.queries(stats) { try await connection.query(query, logger: logger) }

        let keys = aggregates.perKey.sorted { $0.key < $1.key }
        if !keys.isEmpty {
            let ids = keys.map(\.key)
            try await connection.query(
                "SELECT id FROM keys WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE", logger: logger)
            try await connection.query(
                """
                UPDATE keys SET usage_count = keys.usage_count + v.requests, success_count = keys.success_count + v.successes,
                    failure_count = keys.failure_count + v.failures, prompt_tokens = keys.prompt_tokens + v.prompt_tokens,
                    completion_tokens = keys.completion_tokens + v.completion_tokens,
                    last_used = GREATEST(keys.last_used, v.last_used)
                FROM unnest(\(ids)::bigint[], \(keys.map(\.value.requests))::bigint[],
                    \(keys.map(\.value.successes))::bigint[], \(keys.map(\.value.failures))::bigint[],
                    \(keys.map(\.value.promptTokens))::bigint[], \(keys.map(\.value.completionTokens))::bigint[],
                    \(keys.map { date($0.value.lastUsed) })::timestamptz[])
                    AS v(id, requests, successes, failures, prompt_tokens, completion_tokens, last_used)
                WHERE keys.id = v.id
                """, logger: logger)
        }

        let tokens = aggregates.perToken.sorted { $0.key < $1.key }
        if !tokens.isEmpty {
            let ids = tokens.map(\.key)
            try await connection.query(
                "SELECT id FROM client_tokens WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE", logger: logger)
            try await connection.query(
                """
                UPDATE client_tokens SET request_count = client_tokens.request_count + v.requests,
                    prompt_tokens = client_tokens.prompt_tokens + v.prompt_tokens,
                    completion_tokens = client_tokens.completion_tokens + v.completion_tokens,
                    last_used = GREATEST(client_tokens.last_used, v.last_used)
                FROM unnest(\(ids)::bigint[], \(tokens.map(\.value.requests))::bigint[],
                    \(tokens.map(\.value.promptTokens))::bigint[], \(tokens.map(\.value.completionTokens))::bigint[],
                    \(tokens.map { date($0.value.lastUsed) })::timestamptz[])
                    AS v(id, requests, prompt_tokens, completion_tokens, last_used)
                WHERE client_tokens.id = v.id
                """, logger: logger)
        }
    }

    /// Stores per-minute counts of refused requests, as `UsageBatchWriter.commit(_:_:)` does on SQLite: the
    /// largest running total seen per minute, reason and source; returns by how much each reason's total grew.
    static func commit(
        _ counts: [RefusedCount], _ connection: PostgresConnection, logger: Logger
    ) async throws -> [RefusalReason: Int64] {
        var grown: [RefusalReason: Int64] = [:]
        let ordered = counts.sorted {
            ($0.minute, $0.reason.rawValue, $0.source) < ($1.minute, $1.reason.rawValue, $1.source)
        }
        for count in ordered {
            var stored: Int64 = 0
            let rows = try await connection.query(
                """
                SELECT requests FROM refused_requests
                WHERE minute = \(count.minute) AND reason = \(count.reason.rawValue) AND source = \(count.source)
                FOR UPDATE
                """, logger: logger)
            for try await requests in rows.decode(Int64.self) { stored = requests }
            guard count.count > stored else { continue }
            try await connection.query(
                """
                INSERT INTO refused_requests (minute, reason, source, requests)
                VALUES (\(count.minute), \(count.reason.rawValue), \(count.source), \(count.count))
                ON CONFLICT (minute, reason, source) DO UPDATE SET requests = excluded.requests
                """, logger: logger)
            grown[count.reason, default: 0] += count.count - stored
        }
        return grown
    }
}
