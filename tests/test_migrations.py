"""Migrations: versioned and idempotent."""

from __future__ import annotations

import psycopg

from termwatch.schema import load_migrations, migrate


def test_migrating_twice_applies_everything_once_and_then_nothing(empty_database: str) -> None:
    expected = [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    assert migrate(empty_database) == expected
    assert migrate(empty_database) == []
    with psycopg.connect(empty_database) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert versions == [m.version for m in load_migrations()]
    assert {
        "terminals",
        "status_snapshots",
        "events",
        "operations",
        "heartbeats",
        "terminal_state",
        "device_state",
        "device_state_log",
        "availability_log",
        "rejected_messages",
        "complaints",
        "incidents",
    } <= tables
