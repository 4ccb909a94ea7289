"""Database connections. The DSN comes from settings; nothing here reads the environment."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

Row = dict[str, Any]


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection[Row]:
    """A connection whose rows are dicts."""
    return psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row)


def make_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 8, name: str = "termwatch"
) -> ConnectionPool[psycopg.Connection[Row]]:
    """An open pool of dict-row connections; close it with ``pool.close()``."""
    pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        kwargs={"row_factory": dict_row},
        connection_class=psycopg.Connection,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool
