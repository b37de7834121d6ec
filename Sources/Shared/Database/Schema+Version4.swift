import GRDB

extension Schema {
    /// v4: what the admin API adds — client token limits, operator sessions, the audit log, live settings,
    /// and the per-minute request windows that enforce a client token's RPM limit across workers.
    static func createVersion4(_ db: Database) throws {
        try db.execute(
            sql: """
                -- Client token limits, all optional. allowed_models: JSON array of model names, NULL for any.
                -- expires_at: Unix ms. internal = 1: the admin server's own token for its chat console,
                -- never listed or changed through the API.
                ALTER TABLE client_tokens ADD COLUMN allowed_models TEXT;
                ALTER TABLE client_tokens ADD COLUMN rpm_limit INTEGER;
                ALTER TABLE client_tokens ADD COLUMN token_quota INTEGER;
                ALTER TABLE client_tokens ADD COLUMN expires_at INTEGER;
                ALTER TABLE client_tokens ADD COLUMN internal INTEGER NOT NULL DEFAULT 0;

                -- Workers route on the limits too: reload when they move.
                DROP TRIGGER client_tokens_generation_update;
                CREATE TRIGGER client_tokens_generation_update
                AFTER UPDATE OF name, token_hash, status, allowed_models, rpm_limit, token_quota, expires_at
                ON client_tokens BEGIN UPDATE pool_generation SET generation = generation + 1 WHERE id = 1; END;

                -- Requests per client token per minute (window_start: Unix ms at the minute), counted by
                -- every worker with one UPSERT … RETURNING, so an RPM limit holds across workers.
                CREATE TABLE token_rate_windows (
                    token_id INTEGER NOT NULL,
                    window_start INTEGER NOT NULL,
                    requests INTEGER NOT NULL,
                    PRIMARY KEY (token_id, window_start)
                ) WITHOUT ROWID;

                -- Operator sessions of the admin API. Only the SHA-256 of the session id is stored.
                CREATE TABLE admin_sessions (
                    id_hash TEXT PRIMARY KEY NOT NULL,
                    csrf_token TEXT NOT NULL,
                    client TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                );

                -- Every change made through the admin API: who, when, what (secrets masked).
                CREATE TABLE audit_log (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    ts INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    client TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT,
                    detail TEXT
                );
                CREATE INDEX audit_log_ts ON audit_log (ts);

                -- Settings changed live through the admin API; a missing row means the configuration's value.
                CREATE TABLE settings (
                    name TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE TRIGGER settings_generation_insert AFTER INSERT ON settings
                BEGIN UPDATE pool_generation SET generation = generation + 1 WHERE id = 1; END;
                CREATE TRIGGER settings_generation_update AFTER UPDATE ON settings
                BEGIN UPDATE pool_generation SET generation = generation + 1 WHERE id = 1; END;
                CREATE TRIGGER settings_generation_delete AFTER DELETE ON settings
                BEGIN UPDATE pool_generation SET generation = generation + 1 WHERE id = 1; END;
                """)
    }
}
