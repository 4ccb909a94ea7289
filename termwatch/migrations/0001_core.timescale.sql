-- TimescaleDB only: the time-series tables become hypertables. Compression and retention
-- policies are applied from settings after every migrate (termwatch.schema.apply_policies).
SELECT create_hypertable('status_snapshots', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('events', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('operations', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('heartbeats', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('availability_log', by_range('ts', INTERVAL '7 days'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('device_state_log', by_range('ts', INTERVAL '7 days'), if_not_exists => TRUE, migrate_data => TRUE);

ALTER TABLE status_snapshots SET (timescaledb.compress, timescaledb.compress_segmentby = 'tid', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = 'tid', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE operations SET (timescaledb.compress, timescaledb.compress_segmentby = 'tid', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE heartbeats SET (timescaledb.compress, timescaledb.compress_segmentby = 'tid', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE availability_log SET (timescaledb.compress, timescaledb.compress_segmentby = 'tid', timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE device_state_log SET (timescaledb.compress, timescaledb.compress_segmentby = 'tid', timescaledb.compress_orderby = 'ts DESC');
