-- Complaints, incidents and their evidence, silences.

CREATE TABLE complaints (
    id              bigserial PRIMARY KEY,
    ref             text NOT NULL UNIQUE,
    received_at     timestamptz NOT NULL,
    channel         text NOT NULL,
    category        text NOT NULL,
    tid             text,                 -- as given, or found from the address
    address         text,
    occurred_at     timestamptz NOT NULL,
    amount_minor    bigint,
    currency        text NOT NULL DEFAULT 'RUB',
    customer_last4  text,                 -- never more than the last 4 digits
    customer_hash   text,                 -- keyed HMAC-SHA256 of the normalised number
    text            text,
    matched_op_id   text,
    match_score     double precision,
    incident_id     bigint,
    verdict         text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX complaints_tid_occurred ON complaints (tid, occurred_at DESC);
CREATE INDEX complaints_received ON complaints (received_at DESC);
CREATE INDEX complaints_incident ON complaints (incident_id);

CREATE TABLE incidents (
    id                    bigserial PRIMARY KEY,
    tid                   text NOT NULL,          -- for a regional parent: 'region:<name>'
    kind                  text NOT NULL,
    severity              text NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    status                text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    title                 text NOT NULL,
    rule                  text NOT NULL DEFAULT '',
    region                text,
    parent_id             bigint REFERENCES incidents (id),
    is_group              boolean NOT NULL DEFAULT false,
    opened_at             timestamptz NOT NULL,   -- event time of the proof
    acknowledged_at       timestamptz,
    acknowledged_by       text,
    resolved_at           timestamptz,
    resolved_by           text,
    resolve_note          text,
    last_fault_at         timestamptz NOT NULL,   -- last time the condition held
    cleared_at            timestamptz,            -- when the condition stopped holding
    reopen_count          integer NOT NULL DEFAULT 0,
    silenced              boolean NOT NULL DEFAULT false,
    complaints            integer NOT NULL DEFAULT 0,
    operations_affected   integer NOT NULL DEFAULT 0,
    money_at_risk_minor   bigint NOT NULL DEFAULT 0,
    details               jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
-- The database is the arbiter: at most one unresolved incident per (terminal, kind).
CREATE UNIQUE INDEX incidents_one_open ON incidents (tid, kind) WHERE status <> 'resolved';
CREATE INDEX incidents_status_opened ON incidents (status, opened_at DESC);
CREATE INDEX incidents_tid_opened ON incidents (tid, opened_at DESC);
CREATE INDEX incidents_parent ON incidents (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX incidents_resolved_at ON incidents (tid, kind, resolved_at DESC) WHERE status = 'resolved';

ALTER TABLE complaints ADD CONSTRAINT complaints_incident_fk
    FOREIGN KEY (incident_id) REFERENCES incidents (id);

CREATE TABLE incident_evidence (
    incident_id  bigint NOT NULL REFERENCES incidents (id),
    kind         text NOT NULL CHECK (kind IN ('event', 'operation', 'complaint', 'status', 'heartbeat', 'availability')),
    ref          text NOT NULL,           -- msg_id, op_id or complaint ref
    ts           timestamptz NOT NULL,
    summary      text NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, kind, ref)
);

CREATE TABLE incident_log (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents (id),
    at           timestamptz NOT NULL,
    action       text NOT NULL,   -- opened, updated, reopened, acknowledged, resolved, grouped
    actor        text NOT NULL,   -- 'rules' or the person
    note         text
);
CREATE INDEX incident_log_incident ON incident_log (incident_id, at);

CREATE TABLE silences (
    id          bigserial PRIMARY KEY,
    tid         text,
    region      text,
    kind        text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expired_at  timestamptz,
    CHECK (ends_at > starts_at),
    CHECK (tid IS NOT NULL OR region IS NOT NULL OR kind IS NOT NULL)
);
CREATE INDEX silences_active ON silences (ends_at) WHERE expired_at IS NULL;

-- Rule engine bookkeeping (added beside the sketch above; nothing above is renamed).
ALTER TABLE incidents ADD COLUMN detected_at timestamptz;   -- event clock when the engine opened it
ALTER TABLE incidents ADD COLUMN check_at timestamptz;      -- when the engine must look at it again
CREATE INDEX incidents_check_at ON incidents (check_at)
    WHERE status <> 'resolved' AND check_at IS NOT NULL;
CREATE INDEX incidents_region_kind_open ON incidents (region, kind, opened_at DESC)
    WHERE status <> 'resolved' AND NOT is_group;
CREATE INDEX incidents_silenced_open ON incidents (id) WHERE silenced AND status <> 'resolved';
CREATE INDEX complaints_tid_unexplained ON complaints (tid, received_at DESC) WHERE incident_id IS NULL;
CREATE INDEX complaints_matched_op ON complaints (tid, matched_op_id) WHERE matched_op_id IS NOT NULL;
CREATE INDEX incident_log_at ON incident_log (at);
-- Lookups of the current-state tables by the time-driven rules (faults and silent terminals).
CREATE INDEX device_state_value ON device_state (device, field, value);
CREATE INDEX terminal_state_not_online ON terminal_state (tid) WHERE NOT online;
