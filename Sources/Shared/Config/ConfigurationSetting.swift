/// One documented setting: its environment variable, its config-file key, its default and what it accepts.
public struct ConfigurationSetting: Sendable {
    /// The environment variable, such as `OPENAI_PROXY_WORKERS`.
    public let environmentName: String
    /// The key in the JSON config file, such as `workers`.
    public let fileKey: String
    /// The default, as shown to people.
    public let defaultValue: String
    /// What values are accepted, as shown in errors and `--help`.
    public let accepts: String
    /// One line saying what the setting does.
    public let summary: String

    /// The environment variable naming the optional JSON config file.
    public static let configFileVariable = "OPENAI_PROXY_CONFIG"

    /// Every setting, in the order `--help` and the README list them.
    public static let all: [ConfigurationSetting] = [
        .init(
            environmentName: "OPENAI_API_BASE_URL", fileKey: "upstream_base_url",
            defaultValue: "https://api.openai.com/v1", accepts: "an http:// or https:// URL without query",
            summary: "upstream every /v1 request is forwarded to"),
        .init(
            environmentName: "KEY_ROTATION_STRATEGY", fileKey: "key_rotation_strategy",
            defaultValue: "round_robin", accepts: "round_robin, random or least_used",
            summary: "how an upstream key is picked"),
        .init(
            environmentName: "SECRET_KEY", fileKey: "secret_key",
            defaultValue: "generated into DATA_DIR/secret.key", accepts: "at least 16 characters",
            summary: "encrypts upstream keys at rest (AES-GCM)"),
        .init(
            environmentName: "SECRET_KEY_PREVIOUS", fileKey: "secret_key_previous",
            defaultValue: "unset", accepts: "at least 16 characters; only with SECRET_KEY",
            summary: "the SECRET_KEY before a rotation: its keys still open until `rotate-secret` re-seals them"),
        .init(
            environmentName: "OPENAI_PROXY_DATA_DIR", fileKey: "data_dir",
            defaultValue: "./data", accepts: "a directory path",
            summary: "database, secrets, stats socket"),
        .init(
            environmentName: "OPENAI_PROXY_DATABASE_URL", fileKey: "database_url",
            defaultValue: "sqlite:",
            accepts: "sqlite: or postgresql://user[:password]@host[:port]/database[?sslmode=…]",
            summary:
                "sqlite: is DATA_DIR/openai_proxy.db, for one host; a PostgreSQL database (password else from the "
                + "password file or PGPASSWORD) is shared by every process of every host that names it: see "
                + "Several hosts on PostgreSQL"),
        .init(
            environmentName: "OPENAI_PROXY_DATABASE_PASSWORD_FILE", fileKey: "database_password_file",
            defaultValue: "unset", accepts: "a file path; only with a postgresql:// database URL",
            summary: "file whose first line is the PostgreSQL password, when the URL carries none"),
        .init(
            environmentName: "OPENAI_PROXY_LISTEN", fileKey: "listen",
            defaultValue: "0.0.0.0:8000", accepts: "host:port",
            summary: "address of the OpenAI-compatible proxy"),
        .init(
            environmentName: "OPENAI_PROXY_ADMIN_LISTEN", fileKey: "admin_listen",
            defaultValue: "127.0.0.1:5000", accepts: "host:port",
            summary: "address of the admin API"),
        .init(
            environmentName: "OPENAI_PROXY_WORKERS", fileKey: "workers",
            defaultValue: "number of cores", accepts: "an integer from 1 to 64",
            summary: "proxy worker processes"),
        .init(
            environmentName: "OPENAI_PROXY_ADMIN_TOKEN", fileKey: "admin_token",
            defaultValue: "generated into DATA_DIR/admin.token", accepts: "at least 16 characters",
            summary: "bearer token for the admin API"),
        .init(
            environmentName: "OPENAI_PROXY_METRICS_PUBLIC", fileKey: "metrics_public",
            defaultValue: "false", accepts: "true or false",
            summary: "serve the admin port's /metrics without the admin token"),
        .init(
            environmentName: "OPENAI_PROXY_ADMIN_HOSTS", fileKey: "admin_hosts",
            defaultValue: "none", accepts: "comma-separated host names or host:port values",
            summary: "more Host values the admin server answers besides its own address, localhost and loopback"),
        .init(
            environmentName: "OPENAI_PROXY_DRAIN_TIMEOUT", fileKey: "drain_timeout",
            defaultValue: "20s", accepts: "seconds such as 20, 20s or 1500ms, up to 3600s",
            summary: "how long in-flight requests may finish after SIGTERM"),
        .init(
            environmentName: "OPENAI_PROXY_MAX_BODY_BYTES", fileKey: "max_body_bytes",
            defaultValue: "32MiB", accepts: "bytes such as 1048576, 512KiB or 32MiB, from 1KiB to 2GiB",
            summary: "largest request body accepted (413 beyond)"),
        .init(
            environmentName: "OPENAI_PROXY_MAX_ATTEMPTS", fileKey: "max_attempts",
            defaultValue: "3", accepts: "an integer from 1 to 10",
            summary: "upstream attempts per request, each on another key, before the client gets an error"),
        .init(
            environmentName: "OPENAI_PROXY_CONNECT_TIMEOUT", fileKey: "connect_timeout",
            defaultValue: "10s", accepts: "a duration such as 10s or 500ms, up to 1h",
            summary: "connecting to the upstream; past it the attempt fails and the next key is tried"),
        .init(
            environmentName: "OPENAI_PROXY_FIRST_BYTE_TIMEOUT", fileKey: "first_byte_timeout",
            defaultValue: "300s", accepts: "a duration such as 300s or 5m, up to 1h",
            summary: "wait for the answer's first byte (non-streamed answers send it only when done)"),
        .init(
            environmentName: "OPENAI_PROXY_STREAM_IDLE_TIMEOUT", fileKey: "stream_idle_timeout",
            defaultValue: "300s", accepts: "a duration such as 300s or 5m, up to 1h",
            summary: "longest silence between parts of an answer; a stream past it ends with an error event"),
        .init(
            environmentName: "OPENAI_PROXY_FAILURE_THRESHOLD", fileKey: "failure_threshold",
            defaultValue: "3", accepts: "an integer from 1 to 100",
            summary: "transient failures in a row (5xx, connect error, timeout) that send a key cooling"),
        .init(
            environmentName: "OPENAI_PROXY_QUOTA_PROBE_INTERVAL", fileKey: "quota_probe_interval",
            defaultValue: "1h", accepts: "a duration such as 1h or 30m, from 1s to 7d",
            summary: "how often a quota_exhausted key is probed"),
        .init(
            environmentName: "OPENAI_PROXY_INVALID_PROBE_INTERVAL", fileKey: "invalid_probe_interval",
            defaultValue: "6h", accepts: "a duration such as 6h or 30m, from 1s to 7d",
            summary: "how often an invalid (401/403) key is probed"),
        .init(
            environmentName: "OPENAI_PROXY_PROBE_MODEL", fileKey: "probe_model",
            defaultValue: "gpt-4o-mini", accepts: "a model id",
            summary: "model of the 1-token completion that probes a quota_exhausted key"),
        .init(
            environmentName: "LOG_LEVEL", fileKey: "log_level",
            defaultValue: "info", accepts: "trace, debug, info, notice, warning, error or critical",
            summary: "minimum level logged"),
        .init(
            environmentName: "LOG_FORMAT", fileKey: "log_format",
            defaultValue: "text", accepts: "text or json",
            summary: "log line format"),
        .init(
            environmentName: "OPENAI_PROXY_USAGE", fileKey: "usage",
            defaultValue: "on", accepts: "on or off",
            summary: "off records no usage at all: no request log, statistics, chat history or request metrics"),
        .init(
            environmentName: "OPENAI_PROXY_SPOOL_MAX_BYTES", fileKey: "spool_max_bytes",
            defaultValue: "256MiB", accepts: "bytes such as 1048576, 512KiB or 256MiB, from 1KiB to 2GiB",
            summary: "disk for usage rows while the collector is away (all workers); more is dropped and counted"),
        .init(
            environmentName: "OPENAI_PROXY_LOG_RETENTION_DAYS", fileKey: "log_retention_days",
            defaultValue: "30", accepts: "an integer from 1 to 36500",
            summary: "days the request log and chat history are kept; the hourly aggregates stay"),
        .init(
            environmentName: "OPENAI_PROXY_OBJECT_RETENTION_DAYS", fileKey: "object_retention_days",
            defaultValue: "30", accepts: "an integer from 1 to 36500",
            summary: "days an object created through the gateway stays tied to its key and client token"),
        .init(
            environmentName: "OPENAI_PROXY_CHAT_HISTORY", fileKey: "chat_history",
            defaultValue: "off", accepts: "off, metadata or full",
            summary: "chat history of proxied chat and completion requests: none, numbers only, or with texts"),
        .init(
            environmentName: "OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES", fileKey: "chat_history_max_bytes",
            defaultValue: "32KiB", accepts: "bytes such as 4096, 32KiB or 1MiB, from 1KiB to 1MiB",
            summary: "the request's messages and the answer's text are each cut to this size"),
        .init(
            environmentName: "OPENAI_PROXY_USAGE_BATCH_INTERVAL", fileKey: "usage_batch_interval",
            defaultValue: "100ms", accepts: "a duration such as 100ms or 1s, from 1ms to 60s",
            summary: "longest a usage row waits for the collector's next commit"),
        .init(
            environmentName: "OPENAI_PROXY_USAGE_BATCH_ROWS", fileKey: "usage_batch_rows",
            defaultValue: "1000", accepts: "an integer from 1 to 100000",
            summary: "rows that make the collector commit at once, and the most in one transaction"),
        .init(
            environmentName: "OPENAI_PROXY_CLIENT_HEADER_TIMEOUT", fileKey: "client_header_timeout",
            defaultValue: "60s", accepts: "a duration such as 60s or 500ms, up to 1h",
            summary:
                "time to send a request head (from accept, or from its first byte on a kept-alive connection); 408 past it"
        ),
        .init(
            environmentName: "OPENAI_PROXY_CLIENT_BODY_TIMEOUT", fileKey: "client_body_timeout",
            defaultValue: "60s", accepts: "a duration such as 60s or 500ms, up to 1h",
            summary: "longest silence within a request body; 408 past it"),
        .init(
            environmentName: "OPENAI_PROXY_WEBSOCKET_IDLE_TIMEOUT", fileKey: "websocket_idle_timeout",
            defaultValue: "600s", accepts: "a duration such as 600s or 30m, up to 24h",
            summary: "a relayed WebSocket (Realtime, Responses) with no frame either way for this long is closed (1001)"
        ),
        .init(
            environmentName: "OPENAI_PROXY_WORKER_CONNECTIONS", fileKey: "worker_connections",
            defaultValue: "auto: half the open-file limit less 128, at most 16384",
            accepts: "auto or an integer from 1 to 1000000",
            summary: "client connections per worker; more wait in the listen backlog until one closes"),
        .init(
            environmentName: "OPENAI_PROXY_BUFFERED_BODY_BYTES", fileKey: "buffered_body_bytes",
            defaultValue: "256MiB", accepts: "bytes such as 1048576, 512KiB or 256MiB, from 1KiB to 2GiB",
            summary: "request bodies one worker holds in memory at once; past it 503 with Retry-After"),
        .init(
            environmentName: "OPENAI_PROXY_CONSOLE_VENDOR_DIR", fileKey: "console_vendor_dir",
            defaultValue: "/usr/share/javascript", accepts: "a directory path",
            summary: "where the web console finds Debian's libjs-bootstrap5 and libjs-chart.js (served under /vendor/)"),
        .init(
            environmentName: "OPENAI_PROXY_CONSOLE_DIR", fileKey: "console_dir",
            defaultValue: "none: the files compiled in", accepts: "a directory path",
            summary: "for console development: serve the web console's files from this directory, read at each request"),
    ]

    /// The setting with this environment variable.
    public static func named(_ environmentName: String) -> ConfigurationSetting {
        guard let setting = all.first(where: { $0.environmentName == environmentName }) else {
            preconditionFailure("unknown setting \(environmentName)")
        }
        return setting
    }
}
