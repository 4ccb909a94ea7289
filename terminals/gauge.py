"""``termwatch_terminals_registered``: the size of the fleet registry, kept current.

The registry changes from outside the running process (``termwatch terminals import`` run
by an operator), so a thread counts it again every :data:`REFRESH_S` seconds. Alert rules
read it (``TermwatchIngestStalled`` needs it above zero), so it is set as soon as the
process starts. A database that does not answer leaves the last value in place.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

import psycopg

from termwatch.metrics import TERMINALS_REGISTERED

log = logging.getLogger(__name__)

REFRESH_S: Final = 30.0
TIMEOUT_S: Final = 5


class RegistryGauge:
    """Sets :data:`~termwatch.metrics.TERMINALS_REGISTERED` now and every ``refresh_s``."""

    def __init__(self, dsn: str, refresh_s: float = REFRESH_S) -> None:
        self._dsn = dsn
        self._refresh_s = refresh_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> int | None:
        """Count the registry and set the gauge; None (gauge unchanged) when it cannot."""
        try:
            with psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=TIMEOUT_S,
                options=f"-c statement_timeout={TIMEOUT_S * 1000}",
            ) as conn:
                row = conn.execute("SELECT count(*) FROM terminals").fetchone()
        except psycopg.Error as exc:
            log.debug("cannot count the registry: %s", exc)
            return None
        count = int(row[0]) if row else 0
        TERMINALS_REGISTERED.set(count)
        return count

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="registry-gauge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT_S * 2)
            self._thread = None

    def _run(self) -> None:
        while True:
            self.refresh()
            if self._stop.wait(self._refresh_s):
                return
