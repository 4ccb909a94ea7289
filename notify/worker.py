"""The notification worker: plans messages from the outbox and delivers them.

Each pass (:meth:`NotifyWorker.run_once`, or every ``poll_s`` on the worker's own thread
after :meth:`NotifyWorker.start`):

1. plan, in one transaction held by one worker at a time (advisory lock): dispatch new
   ``incident_log`` rows (:mod:`notify.dispatch`), write repeat and escalation items
   (:mod:`notify.timers`), and turn due items into messages (:mod:`notify.flush`);
2. deliver due notifications on a small thread pool (:mod:`notify.deliver`), each send on its
   own connection and transaction, at most one in flight per target;
3. push the open incidents again to each Alertmanager target whose ``resend`` is due
   (:mod:`notify.alertmanager`), on the same pool, one push in flight at a time.

The worker has its own connections and threads: the collector and the rules engine never
wait for it, and a slow or dead target only ever occupies one delivery thread.

The current time comes from ``clock``: the wall clock by default (production); tests pass
``now`` to ``run_once``. A process that also runs the collector may pass the collector's
event clock (``clock=collector.clock.now``) so that a simulated day at any speed is paged
as it would be in real time; while such a clock returns None (no telemetry yet) the
background loop waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from notify.alertmanager import current_alerts
from notify.deliver import Attempted, Deliverer
from notify.dispatch import dispatch
from notify.flush import Made, flush
from notify.routes import Routes, load_routes
from notify.targets import Sender
from notify.timers import chase
from termwatch.db import Row, make_pool
from termwatch.links import LinkSigner
from termwatch.metrics import NOTIFICATIONS, OUTBOX_AGE, OUTBOX_DEPTH
from termwatch.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime | None]
_PLAN_LOCK: Final = 0x6E6F7469  # advisory lock: one planner at a time across processes


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Resent:
    """One push of the open alerts to an Alertmanager target."""

    target: str
    alerts: int
    result: str  # sent | retry | failed
    error: str | None


@dataclass(slots=True)
class RunReport:
    """What one pass did."""

    dispatched: int = 0  # incident_log rows taken
    chased: int = 0  # repeat and escalation items written
    messages: list[Made] = field(default_factory=list)
    attempts: list[Attempted] = field(default_factory=list)
    resent: list[Resent] = field(default_factory=list)  # pushes to Alertmanager targets
    planned: bool = True  # False when another worker held the planning lock


class NotifyWorker:
    """Delivers alerts for incidents; see the module docstring.

    Raises :class:`notify.routes.RoutesError` at construction when the routes file is bad.
    """

    def __init__(
        self,
        settings: Settings,
        dsn: str,
        *,
        clock: Clock = wall_clock,
        routes: Routes | None = None,
        threads: int = 4,
        poll_s: float = 0.2,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self._dsn = dsn
        self._clock = clock
        self._routes = routes if routes is not None else load_routes(settings.routes_file)
        self._base_url = settings.base_url
        self._links = LinkSigner(settings.link_key) if settings.link_key else None
        self._threads = threads
        self._poll_s = poll_s
        self._sender = Sender(settings.notify_log)
        self._deliverer = Deliverer(self._routes, self._sender)
        self._am_targets = [t for t in self._routes.targets.values() if t.kind == "alertmanager"]
        self._am_next: dict[str, datetime] = {}
        self._am_failing: set[str] = set()
        self._resending: Future[list[Resent]] | None = None
        self._pool: ConnectionPool[psycopg.Connection[Row]] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inflight: set[Future[Attempted | None]] = set()
        self._inflight_lock = threading.Lock()
        self._db_down = False

    @property
    def routes(self) -> Routes:
        return self._routes

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Run passes on a thread of the worker's own until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("the notification worker is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="termwatch-notify", daemon=True)
        self._thread.start()
        log.info(
            "notifications: %d route(s) from %s, %d target(s)",
            len(self._routes.groups) + 1,
            self._routes.source,
            len(self._routes.targets),
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop, let sends in flight finish (each is bounded), close connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> NotifyWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one pass --------------------------------------------------------------------------

    def run_once(self, now: datetime) -> RunReport:
        """Plan at ``now`` and deliver everything due at ``now``, waiting for every send.

        Raises ``psycopg.OperationalError`` when the database is unreachable.
        """
        report = self.plan(now)
        executor = self._pool_executor()
        while True:
            futures = [executor.submit(self._deliver, now) for _ in range(self._threads)]
            done = [a for a in (f.result() for f in futures) if a is not None]
            if not done:
                break
            report.attempts.extend(done)
        report.resent = self.resend_alerts(now)
        return report

    def resend_alerts(self, now: datetime) -> list[Resent]:
        """Push the current alerts (:func:`notify.alertmanager.current_alerts`) to every
        Alertmanager target whose ``resend`` is due at ``now``; return what each push did.

        Raises ``psycopg.OperationalError`` when the database is unreachable.
        """
        done: list[Resent] = []
        for target in self._am_targets:
            due = self._am_next.get(target.name)
            if due is not None and now < due:
                continue
            self._am_next[target.name] = now + target.resend
            with self._connections().connection() as conn:
                alerts = current_alerts(conn, self._routes, target, now, self._base_url)
            outcome = self._sender.push_alerts(target, alerts)
            NOTIFICATIONS.labels("alertmanager", outcome.result).inc()
            if outcome.result != "sent" and target.name not in self._am_failing:
                log.warning("alertmanager %s: pushing open alerts: %s", target.name, outcome.error)
                self._am_failing.add(target.name)
            elif outcome.result == "sent" and target.name in self._am_failing:
                log.info("alertmanager %s: pushing open alerts again", target.name)
                self._am_failing.discard(target.name)
            done.append(Resent(target.name, len(alerts), outcome.result, outcome.error))
        return done

    def plan(self, now: datetime) -> RunReport:
        """Dispatch, chase and flush at ``now`` in one transaction; update the outbox gauges."""
        report = RunReport()
        with self._connections().connection() as conn, conn.transaction():
            locked = conn.execute(
                "SELECT pg_try_advisory_xact_lock(%s) AS ok", (_PLAN_LOCK,)
            ).fetchone()
            if locked is None or not locked["ok"]:
                report.planned = False
                return report
            report.dispatched = dispatch(conn, self._routes, now)
            report.chased = chase(conn, self._routes, now)
            report.messages = flush(
                conn, self._routes, now, base_url=self._base_url, links=self._links
            )
            self._gauges(conn, now)
        return report

    def _gauges(self, conn: psycopg.Connection[Row], now: datetime) -> None:
        # Held items (quiet hours, silences) wait on purpose and are not counted.
        row = conn.execute(
            "SELECT (SELECT count(*) FROM notifications WHERE status = 'queued')"
            " + (SELECT count(*) FROM notify_items"
            "    WHERE done_at IS NULL AND held_reason IS NULL) AS depth,"
            " least((SELECT min(created_at) FROM notifications WHERE status = 'queued'),"
            "       (SELECT min(created_at) FROM notify_items"
            "        WHERE done_at IS NULL AND held_reason IS NULL)) AS oldest"
        ).fetchone()
        assert row is not None
        OUTBOX_DEPTH.set(int(row["depth"]))
        oldest = row["oldest"]
        OUTBOX_AGE.set(max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)

    def _deliver(self, now: datetime | None = None) -> Attempted | None:
        now = now or self._clock()
        if now is None:
            return None
        with self._connections().connection() as conn:
            return self._deliverer.deliver_one(conn, now)

    # -- background loop -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = self._clock()
            if now is None:  # an event clock before the first message
                self._stop.wait(self._poll_s)
                continue
            try:
                self.plan(now)
                self._submit_deliveries(now)
                self._submit_resend(now)
                if self._db_down:
                    log.info("notifications: database reachable again")
                    self._db_down = False
            except (psycopg.OperationalError, PoolTimeout) as exc:
                if not self._db_down:
                    log.error("notifications: database unreachable, will retry: %s", exc)
                    self._db_down = True
                self._stop.wait(min(self._poll_s * 10, 5.0))
                continue
            self._stop.wait(self._poll_s)

    def _submit_deliveries(self, now: datetime) -> None:
        with self._connections().connection() as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM notifications"
                " WHERE status = 'queued' AND next_attempt_at <= %s",
                (now,),
            ).fetchone()
        due = int(row["n"]) if row else 0
        executor = self._pool_executor()
        with self._inflight_lock:
            free = self._threads - len(self._inflight)
            for _ in range(min(free, due)):
                future = executor.submit(self._deliver)
                self._inflight.add(future)
                future.add_done_callback(self._finished)

    def _submit_resend(self, now: datetime) -> None:
        if not self._am_targets or (self._resending and not self._resending.done()):
            return
        if self._resending is not None and self._resending.exception() is not None:
            log.warning("alertmanager: pushing open alerts failed: %s", self._resending.exception())
        if all(now < self._am_next.get(t.name, now) for t in self._am_targets):
            return
        self._resending = self._pool_executor().submit(self.resend_alerts, now)

    def _finished(self, future: Future[Attempted | None]) -> None:
        with self._inflight_lock:
            self._inflight.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, psycopg.OperationalError | PoolTimeout):
            log.warning("notifications: delivery lost its database connection: %s", exc)
        elif exc is not None:
            # A bug, not an outage: the row stays queued and is tried again; say so loudly.
            log.error("notifications: delivery failed unexpectedly", exc_info=exc)

    # -- resources -------------------------------------------------------------------------

    def _connections(self) -> ConnectionPool[psycopg.Connection[Row]]:
        if self._pool is None:
            self._pool = make_pool(
                self._dsn, min_size=1, max_size=self._threads + 2, name="termwatch-notify"
            )
        return self._pool

    def _pool_executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="notify-send")
        return self._executor
