-- Acting from the alert: every signed acknowledge/resolve link used, by its link id, so that
-- each link acts once (termwatch/links.py, termwatch/web/links.py).
CREATE TABLE action_links (
    link_id      text PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents (id),
    action       text NOT NULL CHECK (action IN ('ack', 'resolve')),
    recipient    text NOT NULL,
    used_at      timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX action_links_incident ON action_links (incident_id);

-- People: one account per person, with a role. Only the SHA-256 of a token is kept (tokens
-- are random, 256 bits: a fast hash is enough); the token is shown once, when it is made.
CREATE TABLE accounts (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('agent', 'engineer', 'admin')),
    token_sha256  text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL,
    rotated_at    timestamptz,
    revoked_at    timestamptz
);

-- Who registered a complaint through the API or the console (NULL: the MQTT path, a CSV import).
ALTER TABLE complaints ADD COLUMN submitted_by text;

-- Silences with Alertmanager's matchers: [{"label": "severity", "op": "=~", "value": "..."}].
-- The tid, region and kind columns stay, filled from the equality matchers on them; existing
-- silences become equality matchers on the fields they had (and a row written with those
-- columns only, by an older writer, reads as those matchers: rules/silences.py).
ALTER TABLE silences ADD COLUMN matchers jsonb NOT NULL DEFAULT '[]'::jsonb;
UPDATE silences SET matchers = (
    SELECT coalesce(jsonb_agg(jsonb_build_object('label', label, 'op', '=', 'value', value)
                              ORDER BY n), '[]'::jsonb)
    FROM (VALUES (1, 'tid', tid), (2, 'region', region), (3, 'kind', kind)) AS m (n, label, value)
    WHERE value IS NOT NULL
);
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'silences'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%tid IS NOT NULL%'
    LOOP
        EXECUTE format('ALTER TABLE silences DROP CONSTRAINT %I', name);
    END LOOP;
END $$;
ALTER TABLE silences ADD CONSTRAINT silences_some_matcher CHECK (
    jsonb_array_length(matchers) > 0 OR tid IS NOT NULL OR region IS NOT NULL OR kind IS NOT NULL
);
