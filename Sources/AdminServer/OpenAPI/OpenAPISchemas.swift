import Shared

/// The `components.schemas` of the OpenAPI document: every body the admin API answers with or takes.
enum OpenAPISchemas {
    private typealias S = JSONSchema

    /// The token details every set of totals carries, and the cache hit rate over them.
    private static let tokenDetails: [String: JSONValue] = [
        "cached_tokens": S.integer, "reasoning_tokens": S.integer, "audio_input_tokens": S.integer,
        "audio_output_tokens": S.integer, "cache_hit_rate": S.nullable("number"),
    ]

    private static let totals = S.object(
        [
            "requests": S.integer, "successes": S.integer, "failures": S.integer, "prompt_tokens": S.integer,
            "completion_tokens": S.integer, "total_tokens": S.integer, "avg_latency_ms": S.nullable("number"),
        ].merging(tokenDetails) { _, new in new })

    private static func page(_ item: String) -> JSONValue {
        S.object(["data": S.array(S.ref(item)), "total": S.integer, "limit": S.integer, "offset": S.integer])
    }

    private static let tokenProperties: [String: JSONValue] = [
        "id": S.integer, "name": S.string, "token_hint": S.string, "status": S.choice(["active", "revoked"]),
        "allowed_models": ["type": ["array", "null"], "items": S.string], "rpm_limit": S.nullable("integer"),
        "token_quota": S.nullable("integer"), "tokens_used": S.integer,
        "expires_at": S.nullable("string", format: "date-time"), "expired": S.boolean, "request_count": S.integer,
        "prompt_tokens": S.integer, "completion_tokens": S.integer,
        "last_used": S.nullable("string", format: "date-time"), "created_at": S.dateTime,
        "revoked_at": S.nullable("string", format: "date-time"),
    ]

    /// Every schema, by name.
    private static let keyTestResult = S.object([
        "key_id": S.integer, "ok": S.boolean, "status": S.integer, "latency_ms": S.number,
        "models": ["type": ["array", "null"], "items": S.string], "error": S.nullable("string"),
        "state_before": S.string, "state": S.string,
    ])

    static let all: [String: JSONValue] = [
        "Error": S.object([
            "error": S.object(
                [
                    "message": S.string, "type": S.string, "param": S.nullable("string"),
                    "code": S.nullable("string"),
                ], required: ["message", "type", "code"])
        ]),
        "Acknowledgement": S.object(["result": S.string, "id": S.string]),
        "Health": S.object(
            ["status": S.choice(["ok", "degraded"]), "database": S.choice(["unreachable"])], required: ["status"]),
        "Session": S.object(
            [
                "authenticated": S.boolean, "method": S.choice(["bearer", "session"]), "actor": S.string,
                "csrf_token": S.nullable("string"), "expires_at": S.nullable("string", format: "date-time"),
            ], required: ["authenticated", "method", "actor"]),
        "Key": S.object(
            [
                "id": S.integer, "name": S.string, "key_value": S.string,
                "status": S.choice(["active", "cooling", "quota_exhausted", "invalid", "disabled"]),
                "status_reason": S.nullable("string"), "status_code": S.nullable("integer"),
                "status_since": S.nullable("string", format: "date-time"),
                "next_probe_at": S.nullable("string", format: "date-time"), "consecutive_failures": S.integer,
                "rate_limit": S.object([
                    "remaining_requests": S.nullable("integer"), "remaining_tokens": S.nullable("integer"),
                    "reset_requests_at": S.nullable("string", format: "date-time"),
                    "reset_tokens_at": S.nullable("string", format: "date-time"),
                    "updated_at": S.nullable("string", format: "date-time"),
                ]),
                "models": ["type": ["array", "null"], "items": S.string],
                "models_checked_at": S.nullable("string", format: "date-time"),
                "last_probe": S.object([
                    "at": S.nullable("string", format: "date-time"), "status": S.nullable("integer"),
                    "latency_ms": S.nullable("number"), "error": S.nullable("string"),
                ]),
                "usage_count": S.integer, "success_count": S.integer, "failure_count": S.integer,
                "prompt_tokens": S.integer, "completion_tokens": S.integer,
                "last_used": S.nullable("string", format: "date-time"), "created_at": S.dateTime,
                "updated_at": S.dateTime,
            ].merging(tokenDetails) { _, new in new }),
        "KeyTestResult": keyTestResult,
        "KeyTestRun": S.object([
            "run_id": S.string, "total": S.integer, "done": S.integer, "passed": S.integer, "failed": S.integer,
            "finished": S.boolean, "results": S.array(keyTestResult),
        ]),
        "KeyImportResult": S.object([
            "added": S.integer, "duplicate": S.integer, "rejected": S.integer, "rejected_items": S.array(S.integer),
        ]),
        "Model": S.object([
            "model_name": S.string, "description": S.string, "capabilities": S.array(S.string),
            "enabled": S.boolean, "source": S.choice(["manual", "upstream"]), "created_at": S.dateTime,
            "updated_at": S.dateTime,
        ]),
        "Token": S.object(tokenProperties),
        "CreatedToken": S.object(
            tokenProperties.merging(["token": S.string]) { _, new in new }),
        "Settings": S.object([
            "rotation_strategy": S.choice(["round_robin", "random", "least_used"]), "max_body_bytes": S.integer,
            "upstream_connect_timeout_seconds": S.integer, "first_byte_timeout_seconds": S.integer,
            "overridden": S.array(S.string),
        ]),
        "Totals": totals,
        "Overview": S.object([
            "keys": ["type": "object", "additionalProperties": S.integer],
            "tokens": ["type": "object", "additionalProperties": S.integer],
            "models": ["type": "object", "additionalProperties": S.integer],
            "all_time": S.ref("Totals"), "today": S.ref("Totals"), "last_hour": S.ref("Totals"),
            "latency_today": S.object([
                "samples": S.integer, "p50_ms": S.nullable("number"), "p95_ms": S.nullable("number"),
                "p99_ms": S.nullable("number"),
            ]),
        ]),
        "PeriodStats": S.object(
            [
                "period": S.choice(StatsRoutes.periods), "since": S.nullable("string"),
                "totals": S.ref("Totals"),
            ]),
        "RefusedStats": S.object([
            "period": S.choice(StatsRoutes.periods), "since": S.nullable("string"), "total": S.integer,
            "by_reason": S.object(
                Dictionary(uniqueKeysWithValues: RefusalReason.allCases.map { ($0.rawValue, S.integer) })),
        ]),
        "StatusStats": S.object([
            "period": S.choice(StatsRoutes.periods), "since": S.nullable("string"),
            "data": S.array(S.object(["status": S.integer, "requests": S.integer])),
        ]),
        "HourlyStats": S.object([
            "hours": S.integer,
            "data": S.array(S.object(["hour": S.dateTime, "totals": S.ref("Totals")])),
        ]),
        "KeyStats": S.object(
            [
                "key_id": S.integer, "name": S.string, "key_hint": S.string, "status": S.string,
                "requests": S.integer, "successes": S.integer, "failures": S.integer, "prompt_tokens": S.integer,
                "completion_tokens": S.integer, "last_used": S.nullable("string", format: "date-time"),
            ].merging(tokenDetails) { _, new in new }),
        "ModelStats": S.object(["model_name": S.string, "totals": S.ref("Totals")]),
        "TokenStats": S.object(["token_id": S.integer, "name": S.nullable("string"), "totals": S.ref("Totals")]),
        "UsageEntry": S.object([
            "id": S.integer, "request_id": S.string, "timestamp": S.dateTime, "worker": S.integer,
            "key_id": S.nullable("integer"), "token_id": S.nullable("integer"), "model": S.nullable("string"),
            "method": S.string, "path": S.string, "status": S.integer, "latency_ms": S.number,
            "ttfb_ms": S.nullable("number"), "streamed": S.boolean, "prompt_tokens": S.nullable("integer"),
            "completion_tokens": S.nullable("integer"), "total_tokens": S.nullable("integer"),
            "cached_tokens": S.nullable("integer"), "reasoning_tokens": S.nullable("integer"),
            "audio_input_tokens": S.nullable("integer"), "audio_output_tokens": S.nullable("integer"),
            "error": S.nullable("string"),
        ]),
        "UsagePage": page("UsageEntry"),
        "AuditEntry": S.object([
            "id": S.integer, "timestamp": S.dateTime, "actor": S.string, "client": S.string, "action": S.string,
            "target": S.nullable("string"), "detail": S.nullable("string"),
        ]),
        "AuditPage": page("AuditEntry"),
        "ChatConversation": S.object([
            "id": S.integer, "model": S.nullable("string"), "key_id": S.nullable("integer"),
            "key_name": S.nullable("string"), "timestamp": S.dateTime, "request": S.nullable("string"),
            "response": S.nullable("string"),
        ]),
        "ChatPage": page("ChatConversation"),
        "StoredObject": S.object([
            "object_id": S.string, "kind": S.string, "key_id": S.integer, "key_name": S.nullable("string"),
            "key_removed": S.boolean, "token_id": S.integer, "token_name": S.nullable("string"),
            "created_at": S.dateTime, "expires_at": S.dateTime,
        ]),
        "ObjectPage": page("StoredObject"),
        "ObjectSummary": S.object([
            "total": S.integer,
            "keys": S.array(
                S.object([
                    "key_id": S.integer, "key_name": S.nullable("string"), "key_removed": S.boolean,
                    "count": S.integer,
                ])),
            "tokens": S.array(
                S.object(["token_id": S.integer, "token_name": S.nullable("string"), "count": S.integer])),
        ]),
        "ObjectsReassigned": S.object(["moved": S.integer, "from_key_id": S.integer, "to_key_id": S.integer]),
        "ObjectsRevoked": S.object(["revoked": S.integer, "key_id": S.integer]),
        "ChatCompletion": [
            "type": "object", "description": "OpenAI's chat completion object, as the upstream answered.",
        ],
    ]
}
