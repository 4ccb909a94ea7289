#!/bin/sh
# Runs once, when the database volume is first created (docker-entrypoint-initdb.d).
# Creates the roles termwatch and Grafana log in as, so that neither is a superuser:
#   termwatch          owns the termwatch database; `termwatch db migrate` creates the schema.
#   termwatch_grafana  SELECT only; the migrations grant it read access to every table.
# The timescaledb extension is already installed in the database by the image's own script.
# Passwords come from TERMWATCH_DB_PASSWORD and GRAFANA_DB_PASSWORD. To change one later:
#   docker compose exec timescaledb psql -U postgres -c "ALTER ROLE termwatch PASSWORD '...'"
set -eu
: "${TERMWATCH_DB_PASSWORD:?TERMWATCH_DB_PASSWORD must be set}"
: "${GRAFANA_DB_PASSWORD:?GRAFANA_DB_PASSWORD must be set}"
db=${POSTGRES_DB:-termwatch}

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$db" \
    -v db="$db" -v app_pw="$TERMWATCH_DB_PASSWORD" -v grafana_pw="$GRAFANA_DB_PASSWORD" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'termwatch') AS create_app \gset
\if :create_app
CREATE ROLE termwatch LOGIN;
\endif
ALTER ROLE termwatch WITH LOGIN PASSWORD :'app_pw';
ALTER DATABASE :"db" OWNER TO termwatch;
ALTER SCHEMA public OWNER TO termwatch;

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'termwatch_grafana') AS create_ro \gset
\if :create_ro
CREATE ROLE termwatch_grafana LOGIN;
\endif
ALTER ROLE termwatch_grafana WITH LOGIN PASSWORD :'grafana_pw';
ALTER ROLE termwatch_grafana SET default_transaction_read_only = on;
ALTER ROLE termwatch_grafana SET statement_timeout = '30s';
SQL
