"""Database connections, every wait on them bounded. Nothing here reads the environment.

Every connection termwatch opens (collector writer, rule engine, API pool, notifier) goes
through :func:`connect` or :func:`make_pool` and gets:

- ``connect_timeout``: a server that does not finish the handshake fails the attempt;
- TCP keepalives and ``tcp_user_timeout``: a peer that vanished (cable, crashed host,
  half-open connection) is noticed by the kernel even when the connection is idle;
- ``statement_timeout``: the server cancels a statement that runs too long;
- ``idle_in_transaction_session_timeout``: the server ends a session whose client went
  away in the middle of a transaction, so its locks (``terminal_state`` rows) are freed;
- a client-side deadline on every wait for the server (:class:`BoundedConnection`): a
  server, proxy or load balancer that keeps the connection open but answers nothing is
  noticed by none of the above (the kernel of whatever sits in between acknowledges the
  packets); after :attr:`Timeouts.wait_s` without an answer the connection is closed and
  ``psycopg.OperationalError`` raised, which callers treat as "the database is away".

The figures are the constants below; :meth:`Timeouts.from_settings` takes them from the
settings (``TERMWATCH_DB_*``), which tests set short. docs/collector.md explains the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg import errors, pq
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

if TYPE_CHECKING:
    from psycopg.abc import RV, PQGen

    from termwatch.settings import Settings

Row = dict[str, Any]

#: A handshake longer than this fails (PostgreSQL answers a healthy one in milliseconds).
CONNECT_TIMEOUT_S: Final = 5
#: Idle connections are probed after 10 s, every 5 s, dropped after 3 missed probes: a dead
#: peer is noticed in about 25 s even by a connection that sends nothing.
KEEPALIVES_IDLE_S: Final = 10
KEEPALIVES_INTERVAL_S: Final = 5
KEEPALIVES_COUNT: Final = 3
#: Data sent and not acknowledged by the peer's kernel for this long drops the connection
#: (libpq 12 and later; Linux only, ignored elsewhere).
TCP_USER_TIMEOUT_MS: Final = 20_000
#: A collector batch commits in tens of milliseconds and the API's reads in less; 30 s is
#: far beyond both and still short next to an outage.
STATEMENT_TIMEOUT_MS: Final = 30_000
#: termwatch never waits between statements of a transaction; a session idle inside one for
#: this long has lost its client, and the server ends it to free the rows it locked.
IDLE_IN_TRANSACTION_TIMEOUT_MS: Final = 60_000
#: The client gives up on an answer this long after the server's own statement limit.
WAIT_MARGIN_MS: Final = 5_000
_TCP_USER_TIMEOUT_LIBPQ: Final = 120_000


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The bounds of one connection's waits (see the module docstring)."""

    connect_s: int = CONNECT_TIMEOUT_S
    statement_ms: int = STATEMENT_TIMEOUT_MS
    idle_in_transaction_ms: int = IDLE_IN_TRANSACTION_TIMEOUT_MS
    wait_ms: int = STATEMENT_TIMEOUT_MS + WAIT_MARGIN_MS

    @classmethod
    def from_settings(cls, settings: Settings) -> Timeouts:
        return cls(
            connect_s=settings.db_connect_timeout_s,
            statement_ms=settings.db_statement_timeout_ms,
            idle_in_transaction_ms=settings.db_idle_in_transaction_timeout_ms,
            wait_ms=settings.db_statement_timeout_ms + WAIT_MARGIN_MS,
        )

    @property
    def wait_s(self) -> float:
        return self.wait_ms / 1000

    def params(self, dsn: str) -> dict[str, Any]:
        """Connection parameters to add to ``dsn`` (its own ``options`` are kept)."""
        options = conninfo_to_dict(dsn).get("options") or ""
        ours = (
            f"-c statement_timeout={self.statement_ms}"
            f" -c idle_in_transaction_session_timeout={self.idle_in_transaction_ms}"
        )
        params: dict[str, Any] = {
            "connect_timeout": self.connect_s,
            "keepalives": 1,
            "keepalives_idle": KEEPALIVES_IDLE_S,
            "keepalives_interval": KEEPALIVES_INTERVAL_S,
            "keepalives_count": KEEPALIVES_COUNT,
            "options": f"{options} {ours}".strip(),
        }
        if pq.version() >= _TCP_USER_TIMEOUT_LIBPQ:
            params["tcp_user_timeout"] = TCP_USER_TIMEOUT_MS
        return params


DEFAULT_TIMEOUTS: Final = Timeouts()


class BoundedConnection(psycopg.Connection[Row]):
    """A connection that waits at most :attr:`wait_timeout_s` for any answer of the server.

    When the time runs out the connection is closed (its state is unknown: a statement may
    be half sent) and :class:`psycopg.OperationalError` is raised. A caller that passes its
    own timeout (``notifies(timeout=...)``) keeps it.
    """

    wait_timeout_s: float = DEFAULT_TIMEOUTS.wait_s

    def wait(
        self,
        gen: PQGen[RV],
        interval: float = 0.1,
        timeout: float | None = None,
    ) -> RV:
        try:
            return super().wait(gen, interval, self.wait_timeout_s if timeout is None else timeout)
        except errors._WaitTimeout:
            if timeout is not None:
                raise
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"no answer from the database in {self.wait_timeout_s:g} s;"
                " the connection was closed"
            ) from None


def connect(
    dsn: str, *, autocommit: bool = False, timeouts: Timeouts = DEFAULT_TIMEOUTS
) -> psycopg.Connection[Row]:
    """A connection whose rows are dicts and whose waits are bounded by ``timeouts``.

    Raises :class:`psycopg.OperationalError` when the server cannot be reached in
    ``timeouts.connect_s``.
    """
    conn = BoundedConnection.connect(
        dsn, autocommit=autocommit, row_factory=dict_row, **timeouts.params(dsn)
    )
    conn.wait_timeout_s = timeouts.wait_s
    return conn


#: How long an API request waits for a pooled connection before answering 503: a healthy
#: pool hands one over in microseconds, so a longer wait only means the database is away.
POOL_WAIT_S: Final = 1.0


def make_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 8,
    name: str = "termwatch",
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    wait_s: float = POOL_WAIT_S,
) -> ConnectionPool[psycopg.Connection[Row]]:
    """An open pool of dict-row bounded connections; close it with ``pool.close()``.

    ``pool.connection()`` raises :class:`psycopg_pool.PoolTimeout` after ``wait_s`` without
    a connection; the pool keeps reconnecting in the background, so it recovers by itself.
    """

    def configure(conn: psycopg.Connection[Row]) -> None:
        if isinstance(conn, BoundedConnection):
            conn.wait_timeout_s = timeouts.wait_s

    pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        kwargs={"row_factory": dict_row, **timeouts.params(dsn)},
        connection_class=BoundedConnection,
        configure=configure,
        timeout=wait_s,
        reconnect_timeout=float("inf"),
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool
