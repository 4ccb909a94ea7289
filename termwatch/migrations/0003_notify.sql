-- Alert notifications.
--
-- incident_log is the transactional outbox: the rules engine writes every incident change
-- there in the same transaction as the change, and the notification worker marks each row
-- dispatched_at once it has planned what to send for it (in one transaction with the plan).
-- The path of an alert: incident_log -> notify_items (one per incident, event and route,
-- waiting for group_wait or held by quiet hours or a silence) -> notify_messages (one batch
-- of incidents for one route) -> notifications (one per message and target, retried with
-- backoff) -> notification_attempts (the history of every try).

ALTER TABLE incident_log ADD COLUMN dispatched_at timestamptz;
-- Changes made before notifications existed are history, not news: nobody is paged for them.
UPDATE incident_log SET dispatched_at = now();
CREATE INDEX incident_log_undispatched ON incident_log (id) WHERE dispatched_at IS NULL;

CREATE TABLE notify_messages (
    id            bigserial PRIMARY KEY,
    route         text NOT NULL,          -- a service group of the routes file, or 'default'
    event         text NOT NULL CHECK (event IN ('opened', 'repeated', 'escalated', 'resolved')),
    audience      text NOT NULL CHECK (audience IN ('primary', 'escalation')),
    incident_ids  bigint[] NOT NULL,
    created_at    timestamptz NOT NULL,
    title         text NOT NULL,
    body          text NOT NULL,
    payload       jsonb NOT NULL
);
CREATE INDEX notify_messages_incidents ON notify_messages USING gin (incident_ids);
CREATE INDEX notify_messages_created ON notify_messages (created_at);

CREATE TABLE notify_items (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents (id),
    log_id       bigint REFERENCES incident_log (id),  -- NULL for repeats and escalations
    route        text NOT NULL,
    event        text NOT NULL CHECK (event IN ('opened', 'repeated', 'escalated', 'resolved')),
    audience     text NOT NULL CHECK (audience IN ('primary', 'escalation')),
    created_at   timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,   -- end of group_wait, or of a hold
    held_reason  text,                   -- quiet hours or a silence, while held
    done_at      timestamptz,
    message_id   bigint REFERENCES notify_messages (id),
    outcome      text                    -- 'sent' or 'suppressed: <reason>'
);
-- At most one waiting item per incident, route, event and audience: a flapping incident
-- (opened, resolved, reopened within group_wait) is one item, judged when it is due.
CREATE UNIQUE INDEX notify_items_one_waiting ON notify_items (incident_id, route, event, audience)
    WHERE done_at IS NULL;
CREATE INDEX notify_items_waiting ON notify_items (route, due_at) WHERE done_at IS NULL;
CREATE INDEX notify_items_incident ON notify_items (incident_id);

CREATE TABLE notifications (
    id               bigserial PRIMARY KEY,
    message_id       bigint NOT NULL REFERENCES notify_messages (id),
    target           text NOT NULL,      -- target name in the routes file ('log' when none)
    target_type      text NOT NULL,      -- 'webhook', 'log' or the Apprise scheme
    status           text NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    sent_at          timestamptz,
    last_error       text
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'queued';
CREATE INDEX notifications_message ON notifications (message_id);

CREATE TABLE notification_attempts (
    id               bigserial PRIMARY KEY,
    notification_id  bigint NOT NULL REFERENCES notifications (id),
    at               timestamptz NOT NULL,
    target           text NOT NULL,
    result           text NOT NULL CHECK (result IN ('sent', 'retry', 'failed')),
    error            text,
    duration_ms      integer NOT NULL
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, at);

-- Paging state of an incident on one route: what repeat and escalation are timed from.
CREATE TABLE notify_state (
    incident_id     bigint NOT NULL REFERENCES incidents (id),
    route           text NOT NULL,
    first_paged_at  timestamptz NOT NULL,
    last_paged_at   timestamptz NOT NULL,
    repeats         integer NOT NULL DEFAULT 0,
    escalated_at    timestamptz,
    resolved_at     timestamptz,         -- when the resolved message was made
    escalation_resolved_at timestamptz,  -- ... and the one to the escalation targets
    PRIMARY KEY (incident_id, route)
);
CREATE INDEX notify_state_active ON notify_state (incident_id) WHERE resolved_at IS NULL;
