import GRDB

extension Schema {
    /// v5: which client token's request made a key invalid, until a probe confirms it (see KeyHealthPolicy).
    static func createVersion5(_ db: Database) throws {
        try db.execute(
            sql: """
                -- The client token whose request's answer made the key invalid; NULL once a probe confirmed it,
                -- and for every other state. One token never holds more than one such mark.
                ALTER TABLE keys ADD COLUMN marked_by_token INTEGER;

                -- Workers route on the mark too: reload when it moves.
                DROP TRIGGER keys_generation_update;
                CREATE TRIGGER keys_generation_update AFTER UPDATE OF
                    name, key_value, status, next_probe_at, consecutive_failures, cooling_level, models,
                    marked_by_token
                ON keys BEGIN UPDATE pool_generation SET generation = generation + 1 WHERE id = 1; END;

                -- A key leaving invalid by any way (an operator's included) drops its mark.
                CREATE TRIGGER keys_mark_dropped AFTER UPDATE OF status ON keys
                WHEN NEW.status <> 'invalid' AND NEW.marked_by_token IS NOT NULL
                BEGIN UPDATE keys SET marked_by_token = NULL WHERE id = NEW.id; END;
                """)
    }
}
