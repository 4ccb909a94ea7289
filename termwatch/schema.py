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
from importlib import resources

import psycopg

from termwatch.settings import Settings

log = logging.getLogger(__name__)

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
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " timescale boolean NOT NULL DEFAULT false,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            timescale = timescaledb_available(conn)
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
                apply_policies(conn, settings or Settings())
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def apply_policies(conn: psycopg.Connection[object], settings: Settings) -> None:
    """Set the TimescaleDB compression and retention policies from settings (replacing old)."""
    for table in HYPERTABLES:
        conn.execute("SELECT remove_compression_policy(%s, if_exists => TRUE)", (table,))
        conn.execute(
            "SELECT add_compression_policy(%s, make_interval(days => %s))",
            (table, settings.compress_after_days),
        )
        conn.execute("SELECT remove_retention_policy(%s, if_exists => TRUE)", (table,))
        conn.execute(
            "SELECT add_retention_policy(%s, make_interval(days => %s))",
            (table, settings.retention_days),
        )
