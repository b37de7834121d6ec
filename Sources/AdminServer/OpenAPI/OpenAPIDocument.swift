import Foundation

/// The OpenAPI 3.1 document of the admin API, served at `/api/openapi.json`. A test holds it to the routes
/// the router registers, and schemathesis holds the answers to it.
enum OpenAPIDocument {
    typealias S = JSONSchema

    /// The document as JSON text.
    static let json: String = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A JSONValue always encodes.
        return String(decoding: try! encoder.encode(document), as: UTF8.self)
    }()

    /// Every `METHOD /path` the document describes.
    static var operations: [String] {
        paths.members.flatMap { path, item in item.members.keys.map { "\($0.uppercased()) \(path)" } }
    }

    private static let document: JSONValue = [
        "openapi": "3.1.0",
        "info": [
            "title": "openai-proxy admin API", "version": "1",
            "description": .string(
                "Management API of openai-proxy. Authenticate with 'Authorization: Bearer <admin token>', or log in "
                    + "at POST /api/auth/login for a session cookie; cookie requests that change something must send "
                    + "the session's X-CSRF-Token. Every error is {\"error\":{\"message\",\"type\",\"param\",\"code\"}}."
            ),
        ],
        "security": [["bearer": []], ["session": []]],
        "components": [
            "securitySchemes": [
                "bearer": ["type": "http", "scheme": "bearer"],
                "session": ["type": "apiKey", "in": "cookie", "name": "opx_session"],
            ],
            "schemas": .object(OpenAPISchemas.all),
        ],
        "paths": paths,
    ]

    // MARK: - Building blocks

    private static func json(_ schema: JSONValue, _ description: String = "OK") -> JSONValue {
        ["description": .string(description), "content": ["application/json": ["schema": schema]]]
    }

    private static let errorDescriptions: [Int: String] = [
        400: "Invalid input; `param` names the field or parameter.",
        401: "No, a wrong or an expired credential.",
        403: "A cookie session without its CSRF token.",
        404: "No such object.",
        409: "Clashes with what is stored; or no active upstream key, or the upstream refused.",
        413: "Body larger than 1 MiB.",
        429: "Too many failed logins from this address (Retry-After).",
        502: "The upstream or the proxy failed.",
        503: "On PostgreSQL: the database is unreachable (code database_unavailable, Retry-After).",
    ]

    /// An operation; `errors` are added to the errors every operation of its kind can answer.
    static func op(
        _ summary: String, open: Bool = false, parameters: [JSONValue] = [], body: JSONValue? = nil,
        ok: (status: Int, schema: JSONValue), errors: [Int] = [], extraContent: [String: JSONValue] = [:],
        needsDatabase: Bool = true
    ) -> JSONValue {
        var statuses = Set(errors)
        if needsDatabase { statuses.insert(503) }
        if !open { statuses.formUnion([401, 403, 429]) }
        if body != nil { statuses.formUnion([400, 413]) }
        if !parameters.isEmpty { statuses.insert(400) }
        var responses: [String: JSONValue] = [:]
        var success = json(ok.schema).members
        if !extraContent.isEmpty {
            success["content"] = success["content"].map { $0.merging(.object(extraContent)) }
        }
        responses[String(ok.status)] = .object(success)
        for status in statuses.sorted() {
            responses[String(status)] = json(S.ref("Error"), errorDescriptions[status] ?? "Error.")
        }
        var operation: [String: JSONValue] = ["summary": .string(summary), "responses": .object(responses)]
        if open { operation["security"] = [] }
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let body {
            operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": body]]]
        }
        return .object(operation)
    }

    static func query(_ name: String, _ schema: JSONValue, _ description: String) -> JSONValue {
        [
            "name": .string(name), "in": "query", "required": false, "schema": schema,
            "description": .string(description),
        ]
    }

    static func path(_ name: String, _ schema: JSONValue) -> JSONValue {
        ["name": .string(name), "in": "path", "required": true, "schema": schema]
    }

    /// An open route of the web console answering a file (not JSON) of one of `types`, or 404.
    private static func consoleFile(_ summary: String, types: [String], parameter: String? = nil) -> JSONValue {
        var content: [String: JSONValue] = [:]
        for type in types { content[type] = ["schema": S.string] }
        var operation: [String: JSONValue] = [
            "summary": .string(summary), "security": [],
            "responses": [
                "200": ["description": "The file.", "content": .object(content)],
                "404": json(S.ref("Error"), "No such file."),
            ],
        ]
        if let parameter { operation["parameters"] = [path(parameter, ["type": "string", "minLength": 1])] }
        return .object(operation)
    }

    private static let id = path("id", ["type": "integer", "minimum": 1])
    private static let modelName = path("model_name", ["type": "string", "minLength": 1, "maxLength": 200])
    private static let period = query(
        "period", S.choice(StatsRoutes.periods), "Period (default all; days in UTC).")
    static let limit = query("limit", S.integer(1...500), "Page size (default 50).")
    static let offset = query("offset", S.integer(0...10_000_000), "Items to skip (default 0).")

    private static let nullableModels: JSONValue = [
        "type": ["array", "null"], "items": ["type": "string", "minLength": 1, "maxLength": 200], "minItems": 1,
        "maxItems": 500,
    ]
    private static let tokenFields: [String: JSONValue] = [
        "name": ["type": "string", "minLength": 1, "maxLength": 100],
        "allowed_models": nullableModels,
        "rpm_limit": ["type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000],
        "token_quota": ["type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000_000_000_000],
        "expires_at": ["type": ["string", "null"], "format": "date-time"],
    ]
    private static let modelFields: [String: JSONValue] = [
        "description": ["type": "string", "maxLength": 1000],
        "capabilities": S.array(["type": "string", "pattern": "^[a-z0-9_-]{1,40}$"]),
        "enabled": S.boolean,
    ]

    // MARK: - Paths

    private static let paths: JSONValue = .object(corePaths.members.merging(objectPaths) { core, _ in core })

    private static let corePaths: JSONValue = [
        "/healthz": [
            "get": op(
                "Liveness of the admin server: 200 while it serves; in a PostgreSQL outage the body says "
                    + "{\"status\":\"degraded\",\"database\":\"unreachable\"} (the API then answers 503).",
                open: true, ok: (200, S.ref("Health")), needsDatabase: false)
        ],
        "/metrics": [
            "get": [
                "summary": .string(
                    "Prometheus metrics of every process (text exposition format); the admin bearer token "
                        + "unless OPENAI_PROXY_METRICS_PUBLIC=true."),
                "security": [["bearer": []]],
                "responses": [
                    "200": ["description": "OK", "content": ["text/plain": ["schema": S.string]]],
                    "401": json(S.ref("Error"), errorDescriptions[401] ?? "Error."),
                    "429": json(S.ref("Error"), errorDescriptions[429] ?? "Error."),
                ],
            ]
        ],
        "/": [
            "get": consoleFile(
                "The web console's page (open: it logs in through /api/auth/login).", types: ["text/html"])
        ],
        "/assets/{file}": [
            "get": consoleFile(
                "One of the web console's scripts or styles, by file name.", types: ["text/css", "text/javascript"],
                parameter: "file")
        ],
        "/vendor/bootstrap5/{path}": [
            "get": consoleFile(
                "A file of Debian's libjs-bootstrap5, from the console vendor directory; the path may hold slashes.",
                types: ["text/css", "text/javascript", "application/json"], parameter: "path")
        ],
        "/vendor/chart.js/{path}": [
            "get": consoleFile(
                "A file of Debian's libjs-chart.js, from the console vendor directory; the path may hold slashes.",
                types: ["text/javascript", "application/json"], parameter: "path")
        ],
        "/api/openapi.json": [
            "get": op("This document.", open: true, ok: (200, ["type": "object"]))
        ],
        "/api/auth/login": [
            "post": op(
                "Log in with the admin token; sets the session cookie (HttpOnly, SameSite=Strict).", open: true,
                body: S.object(["admin_token": S.string]), ok: (200, S.ref("Session")), errors: [401, 429])
        ],
        "/api/auth/session": ["get": op("Who the request acts as.", ok: (200, S.ref("Session")))],
        "/api/auth/logout": ["post": op("End the cookie session.", ok: (200, S.ref("Acknowledgement")))],
        "/api/keys": [
            "get": op("Every upstream key (values masked).", ok: (200, S.array(S.ref("Key")))),
            "post": op(
                "Add an upstream key.",
                body: S.object(
                    [
                        "name": ["type": "string", "minLength": 1, "maxLength": 100],
                        "key_value": ["type": "string", "minLength": 8, "maxLength": 512],
                        "status": S.choice(["active", "disabled"]),
                    ], required: ["name", "key_value"]),
                ok: (201, S.ref("Key")), errors: [409]),
        ],
        "/api/keys/import": [
            "post": op(
                "Add many keys; answers added / duplicate / rejected counts.",
                body: S.object(
                    [
                        "keys": ["type": "array", "items": S.string, "minItems": 1, "maxItems": 10_000],
                        "name_prefix": ["type": "string", "minLength": 1, "maxLength": 100],
                    ], required: ["keys"]),
                ok: (200, S.ref("KeyImportResult")))
        ],
        "/api/keys/{id}/test": [
            "post": op(
                "Probe a key now (GET /models; a 1-token completion for a key out of quota); its state follows.",
                parameters: [id], ok: (200, S.ref("KeyTestResult")), errors: [404])
        ],
        "/api/keys/test-all": [
            "post": op(
                "Probe every key that is not disabled, in the background; answers at once with the run.",
                ok: (202, S.ref("KeyTestRun")))
        ],
        "/api/keys/test-all/{run_id}": [
            "get": op(
                "Progress and results of a test-all run.",
                parameters: [path("run_id", ["type": "string", "minLength": 1, "maxLength": 64])],
                ok: (200, S.ref("KeyTestRun")), errors: [404])
        ],
        "/api/keys/{id}": [
            "get": op("One key.", parameters: [id], ok: (200, S.ref("Key")), errors: [404]),
            "put": op(
                "Rename a key or set its status (active or disabled).", parameters: [id],
                body: S.object(
                    [
                        "name": ["type": "string", "minLength": 1, "maxLength": 100],
                        "status": S.choice(["active", "disabled"]),
                    ], required: []),
                ok: (200, S.ref("Key")), errors: [404]),
            "delete": op("Remove a key.", parameters: [id], ok: (200, S.ref("Acknowledgement")), errors: [404]),
        ],
        "/api/models": [
            "get": op(
                "Every model; refresh=true first adds the upstream's models (GET /models with an active key). "
                    + "Bearer token only: console sessions use POST /api/models/refresh.",
                parameters: [query("refresh", S.boolean, "Ask the upstream first (bearer token only).")],
                ok: (200, S.array(S.ref("Model"))), errors: [403, 409, 502]),
            "post": op(
                "Add a model.",
                body: S.object(
                    modelFields.merging(["model_name": ["type": "string", "minLength": 1, "maxLength": 200]]) {
                        _, new in new
                    }, required: ["model_name"]),
                ok: (201, S.ref("Model")), errors: [409]),
        ],
        "/api/models/refresh": [
            "post": op(
                "Add the upstream's models (GET /models with an active key), then list every model.",
                ok: (200, S.array(S.ref("Model"))), errors: [409, 502])
        ],
        "/api/models/{model_name}": [
            "get": op("One model.", parameters: [modelName], ok: (200, S.ref("Model")), errors: [404]),
            "put": op(
                "Change a model.", parameters: [modelName], body: S.object(modelFields, required: []),
                ok: (200, S.ref("Model")), errors: [404]),
            "delete": op(
                "Remove a model.", parameters: [modelName], ok: (200, S.ref("Acknowledgement")), errors: [404]),
        ],
        "/api/models/{model_name}/enable": [
            "post": op("Enable a model.", parameters: [modelName], ok: (200, S.ref("Model")), errors: [404])
        ],
        "/api/models/{model_name}/disable": [
            "post": op("Disable a model.", parameters: [modelName], ok: (200, S.ref("Model")), errors: [404])
        ],
        "/api/tokens": [
            "get": op("Every client token (values never shown).", ok: (200, S.array(S.ref("Token")))),
            "post": op(
                "Create a client token; the answer holds its value, the only time it is shown.",
                body: S.object(tokenFields, required: ["name"]), ok: (201, S.ref("CreatedToken"))),
        ],
        "/api/tokens/{id}": [
            "get": op("One client token.", parameters: [id], ok: (200, S.ref("Token")), errors: [404]),
            "put": op(
                "Change a token's name or limits (null removes a limit).", parameters: [id],
                body: S.object(tokenFields, required: []), ok: (200, S.ref("Token")), errors: [404]),
            "delete": op(
                "Revoke a client token.", parameters: [id], ok: (200, S.ref("Acknowledgement")), errors: [404]),
        ],
        "/api/stats/overview": ["get": op("Counts and totals at a glance.", ok: (200, S.ref("Overview")))],
        "/api/stats/usage": [
            "get": op(
                "Totals over a period.",
                parameters: [period],
                ok: (200, S.ref("PeriodStats")))
        ],
        "/api/stats/statuses": [
            "get": op(
                "Requests per answer status over a period, from the request log (kept for the retention period).",
                parameters: [period],
                ok: (200, S.ref("StatusStats")))
        ],
        "/api/stats/refused": [
            "get": op(
                "Requests refused before a client token was known (missing or wrong token, unknown path), by reason.",
                parameters: [period],
                ok: (200, S.ref("RefusedStats")))
        ],
        "/api/stats/hourly": [
            "get": op(
                "Totals per hour for the last hours.",
                parameters: [query("hours", S.integer(1...720), "Hours (default 24).")],
                ok: (200, S.ref("HourlyStats")))
        ],
        "/api/stats/keys": [
            "get": op(
                "Counters per key.", parameters: [query("key_id", ["type": "integer", "minimum": 1], "One key only.")],
                ok: (200, S.array(S.ref("KeyStats"))), errors: [404])
        ],
        "/api/stats/models": [
            "get": op(
                "Totals per model.",
                parameters: [
                    query("model_name", ["type": "string", "minLength": 1, "maxLength": 200], "One model only.")
                ],
                ok: (200, S.array(S.ref("ModelStats"))))
        ],
        "/api/stats/tokens": [
            "get": op(
                "Totals per client token.",
                parameters: [query("token_id", ["type": "integer", "minimum": 1], "One client token only.")],
                ok: (200, S.array(S.ref("TokenStats"))))
        ],
        "/api/usage": [
            "get": op(
                "The request log, newest first.",
                parameters: [
                    limit, offset, query("key_id", ["type": "integer", "minimum": 1], "Upstream key."),
                    query("token_id", ["type": "integer", "minimum": 1], "Client token."),
                    query("model", ["type": "string", "minLength": 1, "maxLength": 200], "Model."),
                    query("status", S.integer(100...599), "HTTP status."),
                    query("from", S.dateTime, "From this time (ISO 8601 or Unix ms)."),
                    query("to", S.dateTime, "Before this time (ISO 8601 or Unix ms)."),
                ], ok: (200, S.ref("UsagePage")))
        ],
        "/api/audit": [
            "get": op(
                "Changes made through this API, newest first.",
                parameters: [
                    limit, offset,
                    query("action", ["type": "string", "minLength": 1, "maxLength": 200], "Such as key.create."),
                ], ok: (200, S.ref("AuditPage")))
        ],
        "/api/settings": [
            "get": op("Live settings in force.", ok: (200, S.ref("Settings"))),
            "put": op(
                "Change live settings (null returns one to the configuration's value); workers apply it within 1 s.",
                body: [
                    "type": "object", "additionalProperties": false,
                    "properties": [
                        "rotation_strategy": [
                            "type": ["string", "null"], "enum": ["round_robin", "random", "least_used", nil],
                        ],
                        "max_body_bytes": ["type": ["integer", "null"], "minimum": 1024, "maximum": 2_147_483_648],
                        "upstream_connect_timeout_seconds": [
                            "type": ["integer", "null"], "minimum": 1, "maximum": 60,
                        ],
                        "first_byte_timeout_seconds": ["type": ["integer", "null"], "minimum": 1, "maximum": 3600],
                    ],
                ], ok: (200, S.ref("Settings"))),
        ],
        "/api/chat": [
            "post": op(
                "A chat completion through the proxy (rotation, failover, usage); stream=true answers with SSE. "
                    + "Header X-OpenAI-Proxy-Key-Id names the key that served it.",
                body: S.object(
                    [
                        "model": ["type": "string", "minLength": 1, "maxLength": 200],
                        "messages": [
                            "type": "array", "minItems": 1, "maxItems": 200,
                            "items": S.object([
                                "role": S.choice(["system", "user", "assistant"]),
                                "content": ["type": "string", "maxLength": 100_000],
                            ]),
                        ],
                        "stream": S.boolean,
                    ], required: ["model", "messages"]),
                ok: (200, S.ref("ChatCompletion")), errors: [409, 502],
                // Each server-sent event: its fields as text (`data` carries a chat.completion.chunk).
                extraContent: [
                    "text/event-stream": [
                        "schema": [
                            "type": "object",
                            "properties": [
                                "data": S.string, "event": S.string, "id": S.string, "retry": ["type": "integer"],
                            ],
                        ]
                    ]
                ])
        ],
        "/api/chat/history": [
            "get": op(
                "Conversations of the chat console, newest first.", parameters: [limit, offset],
                ok: (200, S.ref("ChatPage")))
        ],
        "/api/chat/history/{id}": [
            "get": op("One conversation.", parameters: [id], ok: (200, S.ref("ChatConversation")), errors: [404])
        ],
    ]
}
