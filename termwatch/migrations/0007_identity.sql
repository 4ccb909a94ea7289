-- One id, one message; one op_id, one operation.
--
-- The raw tables keep (tid, msg_id, ts) as their key, because a TimescaleDB hypertable's
-- unique indexes must include its time column. The contract's identity of a message is
-- (tid, id) whatever its ts, and of an operation (tid, op_id): these two plain tables hold
-- them. The collector inserts a message's id here first, in the same statement and
-- transaction as its row, and stores the row only when the id was new.
--
-- They are plain tables on both paths (never hypertables), keyed without the time column;
-- ts is the first stored message's time, kept for the retention: rows older than the raw
-- tables' retention are deleted (TimescaleDB: a job of 0007_identity.timescale.sql), so an
-- id is one message for as long as its row can exist.

CREATE TABLE message_ids (
    tid     text NOT NULL,
    msg_id  text NOT NULL,
    ts      timestamptz NOT NULL,
    PRIMARY KEY (tid, msg_id)
);
CREATE INDEX message_ids_ts ON message_ids (ts);

CREATE TABLE operation_ids (
    tid     text NOT NULL,
    op_id   text NOT NULL,
    msg_id  text NOT NULL,
    ts      timestamptz NOT NULL,
    PRIMARY KEY (tid, op_id)
);
CREATE INDEX operation_ids_ts ON operation_ids (ts);

INSERT INTO message_ids (tid, msg_id, ts)
SELECT tid, msg_id, min(ts) FROM (
    SELECT tid, msg_id, ts FROM status_snapshots
    UNION ALL SELECT tid, msg_id, ts FROM events
    UNION ALL SELECT tid, msg_id, ts FROM operations
    UNION ALL SELECT tid, msg_id, ts FROM heartbeats
) AS stored
GROUP BY tid, msg_id;

INSERT INTO operation_ids (tid, op_id, msg_id, ts)
SELECT DISTINCT ON (tid, op_id) tid, op_id, msg_id, ts FROM operations
ORDER BY tid, op_id, ts;

-- A complaint's correlation can catch up (an operation stored after it, an incident opened
-- after it): each change of its match, incident or verdict is a row here.
CREATE TABLE complaint_log (
    id             bigserial PRIMARY KEY,
    complaint_id   bigint NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    at             timestamptz NOT NULL,       -- event time of the change
    matched_op_id  text,
    incident_id    bigint,
    verdict        text NOT NULL,
    note           text NOT NULL,
    logged_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX complaint_log_complaint ON complaint_log (complaint_id, id);

-- The UTC offset the complaint's occurred_at was given in: a verdict written again speaks in
-- the complaint's own time zone, as the first one did.
ALTER TABLE complaints ADD COLUMN utc_offset_s integer;
