import GRDB

/// The database schema, as an ordered list of migrations; the supervisor and the CLI run them, workers only check them.
public enum Schema {
    /// Every migration, oldest first. Never edit a shipped migration: add a new one.
    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: keys, tokens, models, rotation, usage") { db in
            try createVersion1(db)
        }
        migrator.registerMigration("v2: key health, rate limits, per-key models") { db in
            try createVersion2(db)
        }
        migrator.registerMigration("v3: usage pipeline: estimated tokens, chat history per request") { db in
            try createVersion3(db)
        }
        migrator.registerMigration("v4: admin sessions, audit log, settings, client token limits") { db in
            try createVersion4(db)
        }
        migrator.registerMigration("v5: invalid keys a request marked, awaiting a probe") { db in
            try createVersion5(db)
        }
        migrator.registerMigration(version6Name) { db in
            try createVersion6(db)
        }
        migrator.registerMigration("v7: only the indexes the request log and chat history are read by") { db in
            try createVersion7(db)
        }
        migrator.registerMigration("v8: the secret check") { db in
            try createVersion8(db)
        }
        migrator.registerMigration("v9: objects created through the gateway, their key and client token") { db in
            try createVersion9(db)
        }
        migrator.registerMigration(version10Name) { db in
            try createVersion10(db)
        }
        migrator.registerMigration("v11: operators revoke and reassign object records") { db in
            try createVersion11(db)
        }
        migrator.registerMigration("v12: list endpoints show a client token's own objects") { db in
            try createVersion12(db)
        }
        return migrator
    }

    private static func createVersion1(_ db: Database) throws {
        // Upstream keys. `key_value` holds the AES-GCM sealed value, never the plaintext;
        // `key_fingerprint` (SHA-256 of the plaintext) finds duplicates without decrypting.
        try db.execute(
            sql: """
                CREATE TABLE keys (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL,
                    key_value TEXT NOT NULL,
                    key_fingerprint TEXT NOT NULL UNIQUE,
                    key_hint TEXT NOT NULL,
                    status TEXT NOT NULL DEFAULT 'active',
                    status_reason TEXT,
                    pick_count INTEGER NOT NULL DEFAULT 0,
                    usage_count INTEGER NOT NULL DEFAULT 0,
                    success_count INTEGER NOT NULL DEFAULT 0,
                    failure_count INTEGER NOT NULL DEFAULT 0,
                    prompt_tokens INTEGER NOT NULL DEFAULT 0,
                    completion_tokens INTEGER NOT NULL DEFAULT 0,
                    last_used DATETIME,
                    created_at DATETIME NOT NULL,
                    updated_at DATETIME NOT NULL
                );

                -- One row: the shared round-robin position, advanced with UPDATE … RETURNING.
                CREATE TABLE rotation_cursor (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    position INTEGER NOT NULL
                );
                INSERT INTO rotation_cursor (id, position) VALUES (1, 0);

                -- One row: bumped by triggers whenever keys, tokens or models change, so workers
                -- reload their in-memory snapshot only when something they route on moved.
                CREATE TABLE pool_generation (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    generation INTEGER NOT NULL
                );
                INSERT INTO pool_generation (id, generation) VALUES (1, 0);

                CREATE TABLE models (
                    model_name TEXT PRIMARY KEY NOT NULL,
                    description TEXT NOT NULL DEFAULT '',
                    capabilities TEXT NOT NULL DEFAULT '',
                    enabled INTEGER NOT NULL DEFAULT 1,
                    source TEXT NOT NULL DEFAULT 'manual',
                    created_at DATETIME NOT NULL,
                    updated_at DATETIME NOT NULL
                );

                -- Client tokens are stored as SHA-256 hashes; the value is shown once, at creation.
                CREATE TABLE client_tokens (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    token_hint TEXT NOT NULL,
                    status TEXT NOT NULL DEFAULT 'active',
                    request_count INTEGER NOT NULL DEFAULT 0,
                    prompt_tokens INTEGER NOT NULL DEFAULT 0,
                    completion_tokens INTEGER NOT NULL DEFAULT 0,
                    last_used DATETIME,
                    created_at DATETIME NOT NULL,
                    revoked_at DATETIME
                );

                -- The request log: one row per proxied request, idempotent on request_id.
                CREATE TABLE usage_log (
                    id INTEGER PRIMARY KEY,
                    request_id TEXT NOT NULL UNIQUE,
                    ts INTEGER NOT NULL,
                    worker INTEGER NOT NULL,
                    key_id INTEGER,
                    token_id INTEGER,
                    model TEXT,
                    method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    latency_ms REAL NOT NULL,
                    ttfb_ms REAL,
                    streamed INTEGER NOT NULL DEFAULT 0,
                    prompt_tokens INTEGER,
                    completion_tokens INTEGER,
                    total_tokens INTEGER,
                    error TEXT
                );
                CREATE INDEX usage_log_ts ON usage_log (ts);
                CREATE INDEX usage_log_key_ts ON usage_log (key_id, ts);

                -- Hourly aggregates per key × model × client token (0 / '' when unknown); kept after the log is pruned.
                CREATE TABLE usage_hourly (
                    hour INTEGER NOT NULL,
                    key_id INTEGER NOT NULL,
                    model TEXT NOT NULL,
                    token_id INTEGER NOT NULL,
                    requests INTEGER NOT NULL DEFAULT 0,
                    successes INTEGER NOT NULL DEFAULT 0,
                    failures INTEGER NOT NULL DEFAULT 0,
                    prompt_tokens INTEGER NOT NULL DEFAULT 0,
                    completion_tokens INTEGER NOT NULL DEFAULT 0,
                    latency_ms_sum REAL NOT NULL DEFAULT 0,
                    ttfb_ms_sum REAL NOT NULL DEFAULT 0,
                    PRIMARY KEY (hour, key_id, model, token_id)
                ) WITHOUT ROWID;

                -- The seed's per key × model counters.
                CREATE TABLE usage_stats (
                    key_id INTEGER NOT NULL,
                    model TEXT NOT NULL,
                    usage_count INTEGER NOT NULL DEFAULT 0,
                    last_used DATETIME,
                    PRIMARY KEY (key_id, model)
                );

                CREATE TABLE chat_history (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    key_id INTEGER,
                    model TEXT,
                    request TEXT,
                    response TEXT,
                    timestamp DATETIME NOT NULL
                );
                CREATE INDEX chat_history_timestamp ON chat_history (timestamp);
                """)

        let bump = "UPDATE pool_generation SET generation = generation + 1 WHERE id = 1;"
        let watched: [(table: String, columns: String)] = [
            ("keys", "name, key_value, status"),
            ("client_tokens", "name, token_hash, status"),
            ("models", "model_name, enabled"),
        ]
        for (table, columns) in watched {
            try db.execute(
                sql: """
                    CREATE TRIGGER \(table)_generation_insert AFTER INSERT ON \(table) BEGIN \(bump) END;
                    CREATE TRIGGER \(table)_generation_delete AFTER DELETE ON \(table) BEGIN \(bump) END;
                    CREATE TRIGGER \(table)_generation_update AFTER UPDATE OF \(columns) ON \(table) BEGIN \(bump) END;
                    """)
        }

        // least_used: a key entering rotation starts level with the least used active key, so it does
        // not take all traffic until its count catches up.
        let levelPickCount = """
            UPDATE keys SET pick_count = (
                SELECT COALESCE(MIN(pick_count), 0) FROM keys WHERE status = 'active' AND id <> NEW.id
            ) WHERE id = NEW.id;
            """
        try db.execute(
            sql: """
                CREATE TRIGGER keys_level_on_insert AFTER INSERT ON keys WHEN NEW.status = 'active'
                BEGIN \(levelPickCount) END;
                CREATE TRIGGER keys_level_on_activate AFTER UPDATE OF status ON keys
                WHEN NEW.status = 'active' AND OLD.status <> 'active'
                BEGIN \(levelPickCount) END;
                """)
    }

    private static func createVersion2(_ db: Database) throws {
        // Key health (see KeyHealthPolicy): `status` now also takes cooling, quota_exhausted and invalid.
        // Times are Unix epoch milliseconds, compared by workers in memory. `next_probe_at` is when a
        // cooling key returns by itself, or when a quota_exhausted / invalid key is probed next.
        // `rl_*`: the last rate-limit headers the upstream sent for the key. `models`: JSON array of the
        // model ids the key reached at its last probe, NULL while unknown.
        try db.execute(
            sql: """
                ALTER TABLE keys ADD COLUMN status_code INTEGER;
                ALTER TABLE keys ADD COLUMN status_since INTEGER;
                ALTER TABLE keys ADD COLUMN next_probe_at INTEGER;
                ALTER TABLE keys ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE keys ADD COLUMN cooling_level INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE keys ADD COLUMN rl_remaining_requests INTEGER;
                ALTER TABLE keys ADD COLUMN rl_remaining_tokens INTEGER;
                ALTER TABLE keys ADD COLUMN rl_reset_requests_at INTEGER;
                ALTER TABLE keys ADD COLUMN rl_reset_tokens_at INTEGER;
                ALTER TABLE keys ADD COLUMN rl_updated_at INTEGER;
                ALTER TABLE keys ADD COLUMN models TEXT;
                ALTER TABLE keys ADD COLUMN models_checked_at INTEGER;
                ALTER TABLE keys ADD COLUMN last_probe_at INTEGER;
                ALTER TABLE keys ADD COLUMN last_probe_status INTEGER;
                ALTER TABLE keys ADD COLUMN last_probe_latency_ms REAL;
                ALTER TABLE keys ADD COLUMN last_probe_error TEXT;

                -- Every change of a key's state: who moved it, from what to what, and why.
                CREATE TABLE key_events (
                    id INTEGER PRIMARY KEY,
                    ts INTEGER NOT NULL,
                    key_id INTEGER NOT NULL,
                    from_status TEXT NOT NULL,
                    to_status TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    status_code INTEGER
                );
                CREATE INDEX key_events_key_ts ON key_events (key_id, ts);
                CREATE INDEX key_events_ts ON key_events (ts);

                -- Workers route on the state, its end time, its failure count and the models too: reload
                -- when they move (rate-limit figures are read incrementally by rl_updated_at instead).
                DROP TRIGGER keys_generation_update;
                CREATE TRIGGER keys_generation_update AFTER UPDATE OF
                    name, key_value, status, next_probe_at, consecutive_failures, cooling_level, models
                ON keys BEGIN UPDATE pool_generation SET generation = generation + 1 WHERE id = 1; END;
                """)
    }

    private static func createVersion3(_ db: Database) throws {
        // `tokens_estimated`: the proxy counted the tokens itself because the upstream sent no `usage`.
        // chat_history gets one row per proxied chat request, written in the same transaction as its
        // usage_log row (so a row sent twice makes one chat row too); `request` and `response` hold texts
        // only with OPENAI_PROXY_CHAT_HISTORY=full. `ts` is Unix milliseconds like usage_log.ts, for pruning.
        try db.execute(
            sql: """
                ALTER TABLE usage_log ADD COLUMN tokens_estimated INTEGER NOT NULL DEFAULT 0;

                ALTER TABLE chat_history ADD COLUMN request_id TEXT;
                ALTER TABLE chat_history ADD COLUMN ts INTEGER;
                ALTER TABLE chat_history ADD COLUMN token_id INTEGER;
                ALTER TABLE chat_history ADD COLUMN path TEXT;
                ALTER TABLE chat_history ADD COLUMN status INTEGER;
                ALTER TABLE chat_history ADD COLUMN streamed INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE chat_history ADD COLUMN prompt_tokens INTEGER;
                ALTER TABLE chat_history ADD COLUMN completion_tokens INTEGER;
                ALTER TABLE chat_history ADD COLUMN total_tokens INTEGER;
                ALTER TABLE chat_history ADD COLUMN tokens_estimated INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE chat_history ADD COLUMN latency_ms REAL;
                ALTER TABLE chat_history ADD COLUMN ttfb_ms REAL;
                CREATE UNIQUE INDEX chat_history_request_id ON chat_history (request_id);
                CREATE INDEX chat_history_ts ON chat_history (ts);
                """)
    }
}
