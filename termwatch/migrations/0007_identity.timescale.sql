-- TimescaleDB only: message_ids and operation_ids stay plain tables (a hypertable's unique
-- index must include its time column, which would let a resent id with another ts in). Their
-- rows outlive nothing they guard: a job deletes those older than the raw hypertables'
-- retention policy (policy_retention drop_after of status_snapshots, else 90 days), daily.

CREATE OR REPLACE PROCEDURE termwatch_identity_retention(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    keep interval;
BEGIN
    SELECT (j.config ->> 'drop_after')::interval INTO keep
    FROM timescaledb_information.jobs j
    WHERE j.proc_name = 'policy_retention' AND j.hypertable_name = 'status_snapshots'
    LIMIT 1;
    keep := COALESCE(keep, (config ->> 'drop_after')::interval, INTERVAL '90 days');
    DELETE FROM message_ids WHERE ts < now() - keep;
    DELETE FROM operation_ids WHERE ts < now() - keep;
END
$$;

SELECT add_job('termwatch_identity_retention', INTERVAL '1 day',
               config => '{"drop_after": "90 days"}'::jsonb);
