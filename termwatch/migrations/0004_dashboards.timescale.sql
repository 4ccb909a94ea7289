-- TimescaleDB only: the two hourly views of 0004_dashboards.sql become continuous aggregates
-- of the same name and columns.
--
-- * This runs inside the migration's transaction, where a continuous aggregate can only be
--   created WITH NO DATA; the refresh policy materialises it.
-- * timescaledb.materialized_only = false (real-time aggregation, off by default since
--   TimescaleDB 2.13): rows not yet materialised are aggregated from the hypertable at query
--   time, so the answers equal those of the plain views on PostgreSQL.
-- * The refresh window reaches 35 days back, so late telemetry (a terminal that was offline
--   sends its backlog) within a monthly report's period is re-materialised. It must stay
--   shorter than the raw tables' retention (TERMWATCH_RETENTION_DAYS, default 90).

DROP VIEW dash_operations_hourly;
CREATE MATERIALIZED VIEW dash_operations_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
       tid, kind, outcome, failed_step, failed_error, currency,
       count(*) AS operations,
       sum(amount_minor) AS amount_minor,
       sum(cash_accepted_minor) AS cash_accepted_minor,
       sum(money_at_risk_minor) AS money_at_risk_minor,
       sum(CASE WHEN money_at_risk_minor > 0 THEN 1 ELSE 0 END) AS operations_at_risk
FROM operations
GROUP BY time_bucket(INTERVAL '1 hour', ts), tid, kind, outcome, failed_step, failed_error, currency
WITH NO DATA;

SELECT add_continuous_aggregate_policy('dash_operations_hourly',
    start_offset => INTERVAL '35 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes',
    if_not_exists => TRUE);

DROP VIEW dash_events_hourly;
CREATE MATERIALIZED VIEW dash_events_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
       tid, device, name,
       count(*) AS events
FROM events
GROUP BY time_bucket(INTERVAL '1 hour', ts), tid, device, name
WITH NO DATA;

SELECT add_continuous_aggregate_policy('dash_events_hourly',
    start_offset => INTERVAL '35 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes',
    if_not_exists => TRUE);

-- Explicitly: a GRANT on a continuous aggregate is propagated to its internal materialized
-- hypertable, which real-time aggregation reads; default privileges alone were not before
-- TimescaleDB 2.8.
GRANT SELECT ON dash_operations_hourly, dash_events_hourly TO termwatch_grafana;
