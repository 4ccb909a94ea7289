"""What every request handler shares: settings, the pool, the token book, the clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from termwatch.db import Row
from termwatch.links import LinkSigner
from termwatch.settings import Settings
from termwatch.web.auth import TokenBook

if TYPE_CHECKING:
    from termwatch.web.write import Writer

Clock = Callable[[], datetime]


@dataclass(slots=True)
class Context:
    """Set up by the app's lifespan; ``pool`` and ``writer`` exist while it serves."""

    settings: Settings
    tokens: TokenBook
    clock: Clock
    links: LinkSigner | None = None
    pool: ConnectionPool[psycopg.Connection[Row]] | None = None
    writer: Writer | None = field(default=None)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Row]]:
        """A pooled connection for reads, in autocommit mode while the block runs.

        Reads send their statements in pipeline mode; in autocommit mode the statements of
        one pipeline run in one implicit transaction (one snapshot) and need neither BEGIN
        nor COMMIT, so a page costs one round trip to the server. The pool's own mode is
        restored before the connection goes back (a connection left mid-transaction by an
        error is closed, and the pool replaces it).
        """
        if self.pool is None:
            raise RuntimeError("the app is not started (no database pool)")
        with self.pool.connection() as conn:
            before = conn.autocommit
            conn.autocommit = True
            try:
                yield conn
            finally:
                if conn.info.transaction_status == TransactionStatus.IDLE:
                    conn.autocommit = before
                else:
                    conn.close()

    def write(self) -> Writer:
        if self.writer is None:
            raise RuntimeError("the app is not started (no writer)")
        return self.writer
