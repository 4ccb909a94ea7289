"""Versioned, idempotent schema migrations.

Migrations are the files ``termwatch/migrations/NNNN_name.sql``, applied in order, each in
its own transaction and recorded in ``schema_migrations``. A file ``NNNN_name.timescale.sql``
beside one is applied with it only when the ``timescaledb`` extension is available; nothing
outside this module depends on which path was taken.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

import psycopg

from termwatch.settings import Settings

log = logging.getLogger(__name__)

#: How long ``migrate`` waits for the server to accept the connection.
CONNECT_TIMEOUT_S = 10

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: Tables that TimescaleDB turns into hypertables, with compression and retention policies.
HYPERTABLES = (
    "status_snapshots",
    "events",
    "operations",
    "heartbeats",
    "availability_log",
    "device_state_log",
)
#: The continuous aggregates of 0004_dashboards.timescale.sql, refreshed by a policy each.
CONTINUOUS_AGGREGATES = ("dash_operations_hourly", "dash_events_hourly")
_LOCK_KEY = 0x7465726D  # advisory lock: two processes migrating at once wait for each other


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    timescale_sql: str | None


def load_migrations() -> list[Migration]:
    """Every migration shipped with termwatch, in version order."""
    folder = resources.files("termwatch") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        extra = folder / f"{match[1]}_{match[2]}.timescale.sql"
        found.append(
            Migration(
                version=int(match[1]),
                name=match[2],
                sql=entry.read_text(encoding="utf-8"),
                timescale_sql=extra.read_text(encoding="utf-8") if extra.is_file() else None,
            )
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {versions}")
    return found


class SchemaError(RuntimeError):
    """The database cannot take termwatch's schema as it is; the message says what to do."""


def timescale_path(mode: str, available: bool, created: bool, preloaded: bool) -> bool:
    """Whether to take the TimescaleDB path; raise :class:`SchemaError` when it is wanted
    but cannot work.

    ``mode`` is the ``TERMWATCH_TIMESCALEDB`` setting. A database keeps the path it was
    created on (hypertables cannot be added later by re-running migrations), so a server
    with the extension installed but not preloaded is refused with the fix rather than
    silently given plain tables.
    """
    if created:
        return True
    if mode == "off" or not available:
        return False
    if not preloaded:
        raise SchemaError(
            "TimescaleDB is installed on this server but not loaded: add timescaledb to"
            " shared_preload_libraries in postgresql.conf and restart PostgreSQL, or set"
            " TERMWATCH_TIMESCALEDB=off to use plain PostgreSQL tables"
        )
    return True


def _preloaded(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    libraries = str(row[0]) if row else ""
    return "timescaledb" in [lib.strip().strip('"') for lib in libraries.split(",")]


def timescaledb_available(conn: psycopg.Connection[object]) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def timescaledb_enabled(conn: psycopg.Connection[object]) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def migrate(dsn: str, settings: Settings | None = None) -> list[str]:
    """Bring the schema at ``dsn`` up to date; return the names of the migrations applied.

    Safe to run any number of times and from several processes at once.
    """
    settings = settings or Settings()
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " timescale boolean NOT NULL DEFAULT false,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            timescale = timescale_path(
                settings.timescaledb,
                available=timescaledb_available(conn),
                created=timescaledb_enabled(conn),
                preloaded=_preloaded(conn),
            )
            if timescale:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
            for migration in load_migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    if timescale and migration.timescale_sql:
                        conn.execute(migration.timescale_sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, timescale)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, timescale),
                    )
                log.info("applied migration %04d_%s", migration.version, migration.name)
                applied.append(f"{migration.version:04d}_{migration.name}")
            if timescale:
                apply_policies(conn, settings)
        finally:
            if not conn.closed:  # a server that ended the session has released the lock
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def apply_policies(conn: psycopg.Connection[object], settings: Settings) -> None:
    """Set the TimescaleDB compression, retention and refresh policies from settings.

    A policy already set as the settings say is left alone (its job id and run history
    stay); only a missing or different one is replaced.
    """
    compress = timedelta(days=settings.compress_after_days)
    retain = timedelta(days=settings.retention_days)
    refresh = timedelta(days=settings.aggregate_refresh_days)
    for table in HYPERTABLES:
        if _policy_interval(conn, "policy_compression", table, "compress_after") != compress:
            conn.execute("SELECT remove_compression_policy(%s, if_exists => TRUE)", (table,))
            conn.execute("SELECT add_compression_policy(%s, %s::interval)", (table, compress))
        if _policy_interval(conn, "policy_retention", table, "drop_after") != retain:
            conn.execute("SELECT remove_retention_policy(%s, if_exists => TRUE)", (table,))
            conn.execute("SELECT add_retention_policy(%s, %s::interval)", (table, retain))
    for view in CONTINUOUS_AGGREGATES:
        if _refresh_start(conn, view) != refresh:
            conn.execute(
                "SELECT remove_continuous_aggregate_policy(%s, if_exists => TRUE)", (view,)
            )
            conn.execute(
                "SELECT add_continuous_aggregate_policy(%s, start_offset => %s::interval,"
                " end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes')",
                (view, refresh),
            )


def _policy_interval(
    conn: psycopg.Connection[Any], proc: str, table: str, key: str
) -> timedelta | None:
    """The interval ``key`` of the ``proc`` policy job on hypertable ``table``, if one is set."""
    row = conn.execute(
        "SELECT (config ->> %s)::interval FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_schema = 'public' AND hypertable_name = %s",
        (key, proc, table),
    ).fetchone()
    return _as_timedelta(row[0]) if row else None


def _refresh_start(conn: psycopg.Connection[Any], view: str) -> timedelta | None:
    """The start offset of continuous aggregate ``view``'s refresh policy, if one is set."""
    row = conn.execute(
        "SELECT (j.config ->> 'start_offset')::interval"
        " FROM timescaledb_information.jobs j"
        " JOIN timescaledb_information.continuous_aggregates c"
        "   ON c.materialization_hypertable_schema = j.hypertable_schema"
        "  AND c.materialization_hypertable_name = j.hypertable_name"
        " WHERE j.proc_name = 'policy_refresh_continuous_aggregate'"
        "   AND c.view_schema = 'public' AND c.view_name = %s",
        (view,),
    ).fetchone()
    return _as_timedelta(row[0]) if row else None


def _as_timedelta(value: object) -> timedelta | None:
    return value if isinstance(value, timedelta) else None


def require_schema(dsn: str) -> None:
    """Check, before a long-running command starts, that the database answers and holds
    every migration this termwatch ships; raise :class:`SchemaError` saying what to run.

    ``psycopg.OperationalError`` when the server cannot be reached within
    :data:`CONNECT_TIMEOUT_S`.
    """
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            raise SchemaError("the database has no termwatch schema; run: termwatch db migrate")
        done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
    missing = [f"{m.version:04d}_{m.name}" for m in load_migrations() if m.version not in done]
    if missing:
        raise SchemaError(
            f"the database schema lacks {', '.join(missing)}; run: termwatch db migrate"
        )
