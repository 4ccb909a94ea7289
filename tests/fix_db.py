"""Database fixtures: a fresh database per test session on the real PostgreSQL.

The server is ``TERMWATCH_TEST_DATABASE_URL``, else the local one on 127.0.0.1:5432, else an
embedded server started for the session. Each session creates its own database (so several
test runs can share a server), migrates it, and drops it at the end; ``db`` empties every
table before each test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from termwatch.db import Row, connect
from termwatch.schema import migrate

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _reachable(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN of a PostgreSQL server the tests may create databases on."""
    configured = os.environ.get("TERMWATCH_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if _reachable(LOCAL_DSN):
        yield LOCAL_DSN
        return
    from termwatch.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pgdata")))
    server.start()
    try:
        yield server.dsn("postgres")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def db_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A migrated database of its own for this test session."""
    name = f"tw_test_{os.getpid()}_{secrets.token_hex(3)}"
    params = conninfo_to_dict(pg_server_dsn)
    with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params["dbname"] = name
    dsn = make_conninfo(**params)  # type: ignore[arg-type]
    migrate(dsn)
    try:
        yield dsn
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def truncate_all(dsn: str) -> None:
    """Empty every termwatch table (not the migration record), restarting identities."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migrations'"
            )
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )


@pytest.fixture
def clean_db(db_dsn: str) -> str:
    """The session database, emptied; returns its DSN."""
    truncate_all(db_dsn)
    return db_dsn


@pytest.fixture
def db(clean_db: str) -> Iterator[psycopg.Connection[Row]]:
    """An autocommit connection (dict rows) to the emptied session database."""
    with connect(clean_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def empty_database(pg_server_dsn: str) -> Iterator[str]:
    """A database of its own with no termwatch schema in it, dropped afterwards."""
    name = f"tw_empty_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(pg_server_dsn)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)  # type: ignore[arg-type]
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
