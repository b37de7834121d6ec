import Logging
import NIOCore

/// Everything one `openai-proxy` process needs to know, resolved from defaults, the config file and the environment.
public struct ProxyConfiguration: Sendable, Equatable {
    /// Where requests are forwarded: `OPENAI_API_BASE_URL`, default `https://api.openai.com/v1`.
    public var upstreamBaseURL: UpstreamBaseURL
    /// How a key is picked for a request: `KEY_ROTATION_STRATEGY`, default `round_robin`.
    public var rotationStrategy: RotationStrategy
    /// Secret that encrypts upstream keys at rest: `SECRET_KEY`; when nil, `DATA_DIR/secret.key` is used (generated once).
    public var secretKey: String?
    /// The secret `SECRET_KEY` had before a rotation: `SECRET_KEY_PREVIOUS`; values sealed under it still open,
    /// and `openai-proxy rotate-secret` seals them again under `SECRET_KEY`. Only with `SECRET_KEY`.
    public var secretKeyPrevious: String?
    /// Directory holding the database, secrets, the stats socket and spools: `OPENAI_PROXY_DATA_DIR`, default `./data`.
    public var dataDirectory: String
    /// The shared database: `OPENAI_PROXY_DATABASE_URL`, default SQLite in the data directory. PostgreSQL's
    /// password comes from the URL, else `OPENAI_PROXY_DATABASE_PASSWORD_FILE`, else `PGPASSWORD`.
    public var database: DatabaseLocation
    /// Address of the OpenAI-compatible proxy: `OPENAI_PROXY_LISTEN`, default `0.0.0.0:8000`.
    public var proxyListen: ListenAddress
    /// Address of the admin API and console: `OPENAI_PROXY_ADMIN_LISTEN`, default `127.0.0.1:5000`.
    public var adminListen: ListenAddress
    /// Number of proxy worker processes: `OPENAI_PROXY_WORKERS`, default the number of cores.
    public var workers: Int
    /// Admin bearer token: `OPENAI_PROXY_ADMIN_TOKEN`; when nil, `DATA_DIR/admin.token` is used (generated at first start).
    public var adminToken: String?
    /// Whether `/metrics` answers without the admin token: `OPENAI_PROXY_METRICS_PUBLIC`, default false.
    public var metricsPublic: Bool
    /// `Host` values the admin server answers besides its own address, `localhost` and the loopback addresses:
    /// `OPENAI_PROXY_ADMIN_HOSTS`, default none.
    public var adminHosts: [String]
    /// How long in-flight requests may run after SIGTERM: `OPENAI_PROXY_DRAIN_TIMEOUT`, default 20 s.
    public var drainTimeout: Duration
    /// Largest request body accepted: `OPENAI_PROXY_MAX_BODY_BYTES`, default 32 MiB.
    public var maxBodyBytes: Int
    /// Upstream attempts per request, each on another key: `OPENAI_PROXY_MAX_ATTEMPTS`, default 3.
    public var maxAttempts: Int
    /// Connecting to the upstream: `OPENAI_PROXY_CONNECT_TIMEOUT`, default 10 s.
    public var connectTimeout: Duration
    /// Waiting for an answer's first byte: `OPENAI_PROXY_FIRST_BYTE_TIMEOUT`, default 300 s.
    public var firstByteTimeout: Duration
    /// Longest silence between parts of an answer: `OPENAI_PROXY_STREAM_IDLE_TIMEOUT`, default 300 s.
    public var streamIdleTimeout: Duration
    /// The key state machine's settings: `OPENAI_PROXY_FAILURE_THRESHOLD`, `OPENAI_PROXY_QUOTA_PROBE_INTERVAL`,
    /// `OPENAI_PROXY_INVALID_PROBE_INTERVAL`.
    public var keyHealth: KeyHealthPolicy
    /// Model of the completion that probes a quota_exhausted key: `OPENAI_PROXY_PROBE_MODEL`.
    public var probeModel: String
    /// Minimum level logged: `LOG_LEVEL`, default `info`.
    public var logLevel: Logger.Level
    /// Log line format: `LOG_FORMAT`, `text` or `json`, default `text`.
    public var logFormat: LogFormat
    /// Whether workers record usage rows at all: `OPENAI_PROXY_USAGE`, default on.
    public var usageEnabled: Bool
    /// Disk space for usage rows waiting for the collector, shared by the workers: `OPENAI_PROXY_SPOOL_MAX_BYTES`,
    /// default 256 MiB.
    public var spoolMaxBytes: Int
    /// Days the request log and chat history are kept: `OPENAI_PROXY_LOG_RETENTION_DAYS`, default 30.
    public var logRetentionDays: Int
    /// Days the record of an object created through the gateway (which key holds it, which token owns it) is
    /// kept: `OPENAI_PROXY_OBJECT_RETENTION_DAYS`, default 30 (OpenAI's own retention for most objects).
    public var objectRetentionDays: Int
    /// What the chat history keeps of proxied requests: `OPENAI_PROXY_CHAT_HISTORY`, default `off` (the request
    /// log already holds every request's numbers; the history is for texts an operator chose to keep).
    public var chatHistory: ChatHistoryMode
    /// Size each chat-history text is cut to: `OPENAI_PROXY_CHAT_HISTORY_MAX_BYTES`, default 32 KiB.
    public var chatHistoryMaxBytes: Int
    /// Longest a usage row waits for the collector's next commit: `OPENAI_PROXY_USAGE_BATCH_INTERVAL`, default 100 ms.
    public var usageBatchInterval: Duration
    /// Rows that make the collector commit at once, and the most per transaction: `OPENAI_PROXY_USAGE_BATCH_ROWS`,
    /// default 1000.
    public var usageBatchRows: Int
    /// Longest a client may take to send a request head, from accept or from its first byte on a kept-alive
    /// connection: `OPENAI_PROXY_CLIENT_HEADER_TIMEOUT`, default 60 s (nginx's `client_header_timeout`).
    public var clientHeaderTimeout: Duration
    /// Longest silence within a request body: `OPENAI_PROXY_CLIENT_BODY_TIMEOUT`, default 60 s (nginx's
    /// `client_body_timeout`).
    public var clientBodyTimeout: Duration
    /// A relayed WebSocket with no frame either way for this long is closed with code 1001:
    /// `OPENAI_PROXY_WEBSOCKET_IDLE_TIMEOUT`, default 10 min.
    public var webSocketIdleTimeout: Duration
    /// Client connections one worker holds at once, more wait in the listen backlog:
    /// `OPENAI_PROXY_WORKER_CONNECTIONS`; nil (`auto`) derives it from the open-file limit.
    public var workerConnections: Int?
    /// Request bodies one worker holds in memory at once, over all its connections (503 beyond):
    /// `OPENAI_PROXY_BUFFERED_BODY_BYTES`, default 256 MiB.
    public var bufferedBodyBytes: Int
    /// Where the web console's Bootstrap and Chart.js come from (Debian's `libjs-bootstrap5`, `libjs-chart.js`):
    /// `OPENAI_PROXY_CONSOLE_VENDOR_DIR`, default `/usr/share/javascript`.
    public var consoleVendorDirectory: String
    /// For console development, a directory the console's own files are read from at each request instead of
    /// the copies compiled in: `OPENAI_PROXY_CONSOLE_DIR`, default none.
    public var consoleDirectory: String?

    /// The configuration every setting falls back to.
    public static func defaults(cores: Int = System.coreCount) -> ProxyConfiguration {
        ProxyConfiguration(
            upstreamBaseURL: UpstreamBaseURL.openAI,
            rotationStrategy: .roundRobin,
            secretKey: nil,
            secretKeyPrevious: nil,
            dataDirectory: "./data",
            database: .sqlite,
            proxyListen: ListenAddress(host: "0.0.0.0", port: 8000),
            adminListen: ListenAddress(host: "127.0.0.1", port: 5000),
            workers: max(1, cores),
            adminToken: nil,
            metricsPublic: false,
            adminHosts: [],
            drainTimeout: .seconds(20),
            maxBodyBytes: 32 * 1024 * 1024,
            maxAttempts: 3,
            connectTimeout: .seconds(10),
            firstByteTimeout: .seconds(300),
            streamIdleTimeout: .seconds(300),
            keyHealth: KeyHealthPolicy(),
            probeModel: "gpt-4o-mini",
            logLevel: .info,
            logFormat: .text,
            usageEnabled: true,
            spoolMaxBytes: 256 * 1024 * 1024,
            logRetentionDays: 30,
            objectRetentionDays: 30,
            chatHistory: .off,
            chatHistoryMaxBytes: 32 * 1024,
            usageBatchInterval: .milliseconds(100),
            usageBatchRows: 1000,
            clientHeaderTimeout: .seconds(60),
            clientBodyTimeout: .seconds(60),
            webSocketIdleTimeout: .seconds(600),
            workerConnections: nil,
            bufferedBodyBytes: 256 * 1024 * 1024,
            consoleVendorDirectory: "/usr/share/javascript",
            consoleDirectory: nil
        )
    }
}

extension ProxyConfiguration {
    /// The part of the drain timeout in which workers finish in-flight requests on SIGTERM; the rest is
    /// for the admin server to stop and the collector to commit the last usage rows.
    public var workerDrainBudget: Duration { max(drainTimeout * 0.5, drainTimeout - .seconds(2)) }
}

extension ProxyConfiguration {
    /// The files and sockets under the data directory.
    public var paths: DataPaths { DataPaths(directory: dataDirectory) }
}

/// The files `openai-proxy` keeps in its data directory.
public struct DataPaths: Sendable, Equatable {
    /// The data directory itself.
    public let directory: String
    /// The SQLite database shared by every process.
    public var database: String { directory + "/openai_proxy.db" }
    /// The generated encryption secret (mode 0600) used when `SECRET_KEY` is unset.
    public var secretKey: String { directory + "/secret.key" }
    /// The new encryption secret while `openai-proxy rotate-secret` runs; renamed over `secret.key` at its end.
    public var secretKeyNext: String { directory + "/secret.key.next" }
    /// Held (flock) by the one `rotate-secret` allowed at a time.
    public var secretKeyLock: String { directory + "/secret.key.lock" }
    /// The generated admin token (mode 0600) used when `OPENAI_PROXY_ADMIN_TOKEN` is unset.
    public var adminToken: String { directory + "/admin.token" }
    /// The Unix socket the stats collector listens on.
    public var statsSocket: String { directory + "/stats.sock" }
    /// The shared board of connections per worker, used to spread new connections.
    public var workerLoad: String { directory + "/worker-load" }
    /// Where workers keep usage rows while the collector cannot take them.
    public var spool: String { directory + "/spool" }
    /// The shared board of usage rows each worker dropped at the spool's cap.
    public var usageDrops: String { directory + "/usage-drops" }

    /// Paths under `directory`.
    public init(directory: String) {
        self.directory = directory
    }
}

/// Log line formats.
public enum LogFormat: String, Sendable, CaseIterable {
    /// Human-readable lines.
    case text
    /// One JSON object per line.
    case json
}
