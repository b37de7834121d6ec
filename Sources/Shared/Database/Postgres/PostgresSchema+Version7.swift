extension PostgresSchema {
    /// v7: a change that moves the pool or object generation also notifies `PostgresChangeListener.channel`, so
    /// every worker of every host reloads at once instead of at its next poll (identical notifications of one
    /// transaction reach listeners once).
    static let version7 = Migration(
        version: 7, name: "v7: pool and object changes are notified",
        statements: [
            """
            CREATE OR REPLACE FUNCTION bump_pool_generation() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE pool_generation SET generation = generation + 1 WHERE id = 1;
                PERFORM pg_notify('openai_proxy_changes', '');
                RETURN NULL;
            END $$
            """,
            """
            CREATE FUNCTION notify_object_generation() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('openai_proxy_changes', ''); RETURN NULL; END $$
            """,
            """
            CREATE TRIGGER object_generation_notify AFTER UPDATE ON object_generation
            FOR EACH STATEMENT EXECUTE FUNCTION notify_object_generation()
            """,
        ])
}
