-- Fleet registry, raw telemetry, current state and rejected messages.
-- Time-series tables carry (tid, msg_id, ts) as their idempotency key: the time column is
-- part of it so that the same key works on a TimescaleDB hypertable.

CREATE TABLE terminals (
    tid            text PRIMARY KEY CHECK (tid ~ '^[A-Za-z0-9_-]{1,32}$'),
    name           text NOT NULL,
    address        text NOT NULL,
    city           text NOT NULL,
    region         text NOT NULL,
    lat            double precision CHECK (lat BETWEEN -90 AND 90),
    lon            double precision CHECK (lon BETWEEN -180 AND 180),
    model          text NOT NULL DEFAULT '',
    service_group  text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX terminals_region ON terminals (region);
CREATE INDEX terminals_service_group ON terminals (service_group);
CREATE INDEX terminals_city ON terminals (lower(city));

CREATE TABLE status_snapshots (
    tid          text NOT NULL,
    msg_id       text NOT NULL,
    ts           timestamptz NOT NULL,
    seq          bigint,
    received_at  timestamptz NOT NULL DEFAULT now(),
    devices      jsonb NOT NULL,
    CONSTRAINT status_snapshots_key UNIQUE (tid, msg_id, ts)
);
CREATE INDEX status_snapshots_tid_ts ON status_snapshots (tid, ts DESC);
CREATE INDEX status_snapshots_ts ON status_snapshots (ts DESC);

CREATE TABLE events (
    tid          text NOT NULL,
    msg_id       text NOT NULL,
    ts           timestamptz NOT NULL,
    seq          bigint,
    received_at  timestamptz NOT NULL DEFAULT now(),
    device       text NOT NULL,
    name         text NOT NULL,
    payload      jsonb NOT NULL,
    CONSTRAINT events_key UNIQUE (tid, msg_id, ts)
);
CREATE INDEX events_tid_ts ON events (tid, ts DESC);
CREATE INDEX events_ts ON events (ts DESC);

CREATE TABLE operations (
    tid                  text NOT NULL,
    msg_id               text NOT NULL,
    ts                   timestamptz NOT NULL,
    seq                  bigint,
    received_at          timestamptz NOT NULL DEFAULT now(),
    op_id                text NOT NULL,
    kind                 text NOT NULL,
    service              text,
    account_last4        text,            -- never more than the last 4 digits
    amount_minor         bigint NOT NULL,
    currency             text NOT NULL,
    outcome              text NOT NULL,   -- raw value as sent
    started              timestamptz,
    failed_step          text,            -- first step not success/skipped
    failed_result        text,
    failed_error         text,
    cash_accepted_minor  bigint NOT NULL DEFAULT 0,
    money_at_risk_minor  bigint NOT NULL DEFAULT 0,
    steps                jsonb NOT NULL,
    CONSTRAINT operations_key UNIQUE (tid, msg_id, ts)
);
CREATE INDEX operations_tid_ts ON operations (tid, ts DESC);
CREATE INDEX operations_ts ON operations (ts DESC);
CREATE INDEX operations_tid_op ON operations (tid, op_id);

CREATE TABLE heartbeats (
    tid          text NOT NULL,
    msg_id       text NOT NULL,
    ts           timestamptz NOT NULL,
    seq          bigint,
    received_at  timestamptz NOT NULL DEFAULT now(),
    interval_s   integer NOT NULL,
    uptime_s     bigint,
    app          text,
    CONSTRAINT heartbeats_key UNIQUE (tid, msg_id, ts)
);
CREATE INDEX heartbeats_tid_ts ON heartbeats (tid, ts DESC);

-- Online/offline transitions: from the availability topic (source 'mqtt') or from missing
-- heartbeats (source 'heartbeat').
CREATE TABLE availability_log (
    tid          text NOT NULL,
    ts           timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('online', 'offline')),
    source       text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX availability_log_tid_ts ON availability_log (tid, ts DESC);
CREATE INDEX availability_log_ts ON availability_log (ts DESC);

-- Every change of a device field, for timelines and availability reports.
CREATE TABLE device_state_log (
    tid     text NOT NULL,
    device  text NOT NULL,
    field   text NOT NULL,
    value   text NOT NULL,
    ts      timestamptz NOT NULL
);
CREATE INDEX device_state_log_tid_ts ON device_state_log (tid, ts DESC);
CREATE INDEX device_state_log_ts ON device_state_log (ts DESC);

-- Current state: one row per terminal, one row per (terminal, device, field).
CREATE TABLE terminal_state (
    tid                   text PRIMARY KEY,
    first_seen            timestamptz NOT NULL,
    last_seen             timestamptz NOT NULL,      -- event time of the newest message
    last_received_at      timestamptz NOT NULL,      -- wall clock when it arrived
    heartbeat_interval_s  integer NOT NULL DEFAULT 60,
    last_heartbeat_at     timestamptz,
    online                boolean NOT NULL DEFAULT true,
    online_changed_at     timestamptz NOT NULL,
    offline_reason        text,                      -- 'availability' | 'heartbeat'
    service_mode          boolean NOT NULL DEFAULT false,
    service_mode_since    timestamptz,
    engineer              text,
    app                   text,
    last_seq              bigint,
    seq_gaps              bigint NOT NULL DEFAULT 0,
    status_ts             timestamptz               -- newest status applied to device_state
);
CREATE INDEX terminal_state_last_seen ON terminal_state (last_seen);

CREATE TABLE device_state (
    tid     text NOT NULL,
    device  text NOT NULL,
    field   text NOT NULL,
    value   text NOT NULL,       -- raw value as sent (unknown enum values kept)
    since   timestamptz NOT NULL, -- when it entered this value (event time)
    ts      timestamptz NOT NULL, -- event time of the newest message that set it
    PRIMARY KEY (tid, device, field)
);

CREATE TABLE rejected_messages (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    topic         text NOT NULL,
    kind          text NOT NULL,
    tid           text,
    reason        text NOT NULL,
    payload_head  bytea NOT NULL
);
CREATE INDEX rejected_messages_received_at ON rejected_messages (received_at DESC);
