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
