-- Relations read by the Grafana dashboards and the SLA report, and the read-only role that
-- Grafana connects as.
--
-- dash_operations_hourly and dash_events_hourly are plain views here. Where TimescaleDB is
-- present, 0004_dashboards.timescale.sql replaces them by continuous aggregates with the same
-- name, columns and answers, so the dashboards' SQL is the same on both. Nothing may depend
-- on those two views (the TimescaleDB file drops them).

-- Hourly operations per terminal and outcome. Buckets are aligned on UTC hours, exactly as
-- time_bucket('1 hour', ts) aligns them.
CREATE VIEW dash_operations_hourly AS
SELECT date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
       tid, kind, outcome, failed_step, failed_error, currency,
       count(*) AS operations,
       sum(amount_minor) AS amount_minor,
       sum(cash_accepted_minor) AS cash_accepted_minor,
       sum(money_at_risk_minor) AS money_at_risk_minor,
       sum(CASE WHEN money_at_risk_minor > 0 THEN 1 ELSE 0 END) AS operations_at_risk
FROM operations
GROUP BY date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00'),
         tid, kind, outcome, failed_step, failed_error, currency;

-- Hourly device and application events per terminal and event name.
CREATE VIEW dash_events_hourly AS
SELECT date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
       tid, device, name,
       count(*) AS events
FROM events
GROUP BY date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00'), tid, device, name;

-- Every known terminal (registered, or seen in telemetry without a registry entry) with its
-- state for the map: offline > service mode > critical incident > major incident > online.
CREATE VIEW dash_terminals AS
WITH open_incidents AS (
    SELECT tid,
           bool_or(severity = 'critical') AS critical,
           bool_or(severity = 'major') AS major,
           count(*) AS open_incidents
    FROM incidents
    WHERE status <> 'resolved' AND NOT is_group
    GROUP BY tid
), known AS (
    SELECT coalesce(t.tid, s.tid) AS tid,
           t.tid IS NOT NULL AS registered,
           coalesce(t.name, s.tid) AS name,
           coalesce(t.region, '(unregistered)') AS region,
           coalesce(t.city, '') AS city,
           coalesce(t.address, '') AS address,
           t.lat, t.lon,
           coalesce(t.model, '') AS model,
           coalesce(t.service_group, '') AS service_group,
           s.first_seen, s.last_seen, s.online, s.service_mode,
           coalesce(o.open_incidents, 0) AS open_incidents,
           CASE
               WHEN s.tid IS NULL THEN 'never_seen'
               WHEN NOT s.online THEN 'offline'
               WHEN s.service_mode THEN 'service'
               WHEN o.critical THEN 'critical'
               WHEN o.major THEN 'degraded'
               ELSE 'online'
           END AS state
    FROM terminals t
    FULL JOIN terminal_state s ON s.tid = t.tid
    LEFT JOIN open_incidents o ON o.tid = coalesce(t.tid, s.tid)
)
SELECT known.*,
       CASE state
           WHEN 'online' THEN 0 WHEN 'degraded' THEN 1 WHEN 'service' THEN 2
           WHEN 'critical' THEN 3 WHEN 'offline' THEN 4 ELSE 5
       END AS state_code
FROM known;

-- Terminal incidents (not regional parents) with where they happened and how long people took.
CREATE VIEW dash_incidents AS
SELECT i.id, i.tid, i.kind, i.severity, i.status, i.title, i.rule,
       i.opened_at, i.acknowledged_at, i.resolved_at, i.cleared_at, i.last_fault_at,
       i.reopen_count, i.silenced, i.complaints, i.operations_affected, i.money_at_risk_minor,
       i.parent_id,
       coalesce(i.region, t.region, '(unregistered)') AS region,
       coalesce(t.model, '') AS model,
       coalesce(t.service_group, '') AS service_group,
       extract(epoch FROM i.acknowledged_at - i.opened_at) AS tta_s,
       extract(epoch FROM i.resolved_at - i.opened_at) AS ttr_s
FROM incidents i
LEFT JOIN terminals t ON t.tid = i.tid
WHERE NOT i.is_group;

-- Complaints with the terminal's region and whether they were matched.
CREATE VIEW dash_complaints AS
SELECT c.id, c.ref, c.received_at, c.occurred_at, c.channel, c.category, c.tid,
       coalesce(t.region, '(unknown terminal)') AS region,
       c.amount_minor, c.currency, c.verdict,
       c.matched_op_id IS NOT NULL AS matched_operation,
       c.incident_id IS NOT NULL AS matched_incident,
       c.incident_id
FROM complaints c
LEFT JOIN terminals t ON t.tid = c.tid;

-- Offline periods from the availability log: from each change to 'offline' until the next
-- change to 'online' (ended_at NULL while still offline). Repeated rows of the same state
-- (from the availability topic and from missing heartbeats) count once, from the first.
CREATE VIEW dash_offline_periods AS
WITH ordered AS (
    SELECT tid, ts, state,
           lag(state) OVER (PARTITION BY tid ORDER BY ts, received_at) AS previous
    FROM availability_log
), changes AS (
    SELECT tid, ts, state FROM ordered WHERE previous IS DISTINCT FROM state
), spans AS (
    SELECT tid, state, ts AS started_at,
           lead(ts) OVER (PARTITION BY tid ORDER BY ts) AS ended_at
    FROM changes
)
SELECT tid, started_at, ended_at FROM spans WHERE state = 'offline';

-- Downtime: the union, per terminal, of the offline periods and of the periods of
-- incidents that stop a terminal serving customers (from opened_at until the condition
-- cleared, else until resolved; ended_at NULL while ongoing). Overlapping or touching
-- periods are merged. docs/report.md defines it; the SLA report uses the same kinds.
CREATE VIEW dash_downtime AS
WITH periods AS (
    SELECT tid, started_at, coalesce(ended_at, 'infinity') AS ended_at
    FROM dash_offline_periods
    UNION ALL
    SELECT tid, opened_at, coalesce(cleared_at, resolved_at, 'infinity')
    FROM incidents
    WHERE NOT is_group
      AND kind IN ('terminal_offline', 'cash_acceptor_jam', 'cash_acceptor_full',
                   'cash_acceptor_fault', 'payment_failures')
), reach AS (
    SELECT tid, started_at, ended_at,
           max(ended_at) OVER (PARTITION BY tid ORDER BY started_at, ended_at
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reached
    FROM periods
    WHERE ended_at > started_at
), islands AS (
    SELECT tid, started_at, ended_at,
           sum(CASE WHEN reached >= started_at THEN 0 ELSE 1 END)
               OVER (PARTITION BY tid ORDER BY started_at, ended_at ROWS UNBOUNDED PRECEDING)
               AS island
    FROM reach
)
SELECT tid, min(started_at) AS started_at, nullif(max(ended_at), 'infinity') AS ended_at
FROM islands
GROUP BY tid, island;

-- The role Grafana reads through: SELECT only, on everything now and on what later
-- migrations create. Created NOLOGIN when missing; the deployment gives it a password:
--   ALTER ROLE termwatch_grafana WITH LOGIN PASSWORD '...';
-- (deploy/timescaledb/init-roles.sh creates it beforehand, with a password.) Roles belong
-- to the whole server, so another database may have created it already.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'termwatch_grafana') THEN
        BEGIN
            CREATE ROLE termwatch_grafana NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created at the same moment by a migration of another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role termwatch_grafana does not exist and % may not create it',
                    current_user
                    USING HINT = 'CREATE ROLE termwatch_grafana NOLOGIN as a superuser, '
                                 'or migrate as a role with CREATEROLE';
        END;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO termwatch_grafana', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO termwatch_grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO termwatch_grafana;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO termwatch_grafana;
