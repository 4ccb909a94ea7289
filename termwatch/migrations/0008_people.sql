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
