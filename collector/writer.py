"""The writer thread: batches from the inbox, one transaction each, then PUBACKs, then hooks.

For every batch, in this order:

1. the event clock observes the batch's telemetry timestamps;
2. one transaction stores the raw rows (COPY into staging, idempotent insert), moves the
   current state by what was new, stores complaints through the :class:`ComplaintSink`
   and keeps rejected messages;
3. after the commit, and only then, the batch's QoS 1 messages are acknowledged to the
   broker, metrics are counted, and every :class:`AfterCommit` hook gets a
   :class:`StoredBatch` of what was new.

About once a second of wall time the writer also records terminals whose heartbeats
stopped (:mod:`collector.liveness`) and calls each hook's ``tick`` with the event clock.

Failures: a lost database connection is logged once, retried with backoff, and the batch is
written when the database is back (nothing is acknowledged meanwhile, so the broker keeps
the messages). A deadlock or serialization failure is retried at once. A row the database
refuses (a value PostgreSQL cannot hold) is isolated by splitting the batch and kept as
rejected with reason ``unstorable``; the rest of the batch is stored. Any other exception is
a bug: the writer stops and reports it through ``on_fatal``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg
from prometheus_client import Counter as MetricCounter
from psycopg import errors

from collector import liveness, state, store
from collector.clock import EventClock
from collector.decode import (
    REASONS,
    TELEMETRY_KINDS,
    UNSTORABLE,
    Decoded,
    Rejected,
)
from collector.hooks import AfterCommit, AvailabilityChange, ComplaintSink, StoredBatch
from collector.inbox import Inbox, Received
from collector.statecache import Entry, StateCache
from collector.store import Conn
from terminals.contract import Complaint, Event, Heartbeat, Operation, Status
from termwatch.db import Timeouts, connect
from termwatch.metrics import (
    BATCH_SIZE,
    COMMIT_SECONDS,
    DATABASE_UP,
    EVENT_CLOCK,
    KINDS,
    MESSAGES,
    OLDEST_UNACKED,
    QUEUE_DEPTH,
    REJECTED,
)
from termwatch.settings import Settings

log = logging.getLogger(__name__)

TICK_S: Final = 1.0
#: At most one log line this often about rows the database refused, with the count since.
REFUSAL_LOG_EVERY_S: Final = 10.0
#: Rejected messages older than the retention are deleted about this often (wall time).
PRUNE_EVERY_S: Final = 300.0
DEADLOCK_RETRIES: Final = 5
BACKOFF_MIN_S: Final = 0.5
BACKOFF_MAX_S: Final = 10.0
#: Errors that belong to the rows, not to the database: isolate the row and keep it rejected.
_ROW_ERRORS: Final = (psycopg.DataError, psycopg.IntegrityError, UnicodeEncodeError, OverflowError)

_STORED: Final = {
    "status": "status",
    "events": "events",
    "operations": "operations",
    "heartbeat": "heartbeats",
}

HOOK_ERRORS = MetricCounter(
    "termwatch_hook_errors",
    "Exceptions raised by after-commit hooks (rules, complaint intake), by hook class.",
    ["hook"],
)
for _reason in REASONS:
    REJECTED.labels(_reason)


class RateLimitedLog:
    """Warnings of one kind, at most one line every ``every_s`` seconds, each saying how many
    were left unsaid since the last one (so a flood of bad rows cannot flood the log)."""

    def __init__(self, logger: logging.Logger, every_s: float) -> None:
        self._log = logger
        self._every_s = every_s
        self._last = -float("inf")
        self._suppressed = 0

    def warn(self, line: str, now: float | None = None) -> bool:
        """Log ``line`` unless one was logged less than ``every_s`` ago; True when logged."""
        now = time.monotonic() if now is None else now
        if now - self._last < self._every_s:
            self._suppressed += 1
            return False
        more = f" (and {self._suppressed} more since the last line)" if self._suppressed else ""
        self._log.warning("%s%s", line, more)
        self._last = now
        self._suppressed = 0
        return True


class RejectBudget:
    """How many rejected messages each terminal may add to the table per minute.

    Every rejection is counted in the metrics; only the first ``per_minute`` of a terminal
    (or of topics that name none, together) in each minute of wall time are kept, so one
    hostile terminal cannot fill the disk. Memory: one counter per terminal seen this minute.
    """

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._minute = -1
        self._used: Counter[str | None] = Counter()

    def keep(self, rejected: Sequence[Rejected], now: float | None = None) -> list[Rejected]:
        minute = int((time.time() if now is None else now) // 60)
        if minute != self._minute:
            self._minute = minute
            self._used.clear()
        kept = []
        for r in rejected:
            if self._used[r.tid] < self._per_minute:
                self._used[r.tid] += 1
                kept.append(r)
        return kept


class Abandoned(Exception):
    """The writer was told to stop while the database was unreachable; the batch in hand
    was not committed and not acknowledged (the broker delivers it again)."""


@dataclass(slots=True)
class _Outcome:
    """What one committed batch (or part of one) did."""

    stored: StoredBatch
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    written: dict[str, Entry] = field(default_factory=dict)

    def merge(self, other: _Outcome) -> _Outcome:
        for name in ("status", "events", "operations", "heartbeats", "availability", "complaints"):
            getattr(self.stored, name).extend(getattr(other.stored, name))
        self.counts.update(other.counts)
        self.reasons.update(other.reasons)
        self.written.update(other.written)
        return self


class Writer:
    """Owns one database connection and the batch loop; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        inbox: Inbox,
        ack: Callable[[Sequence[Received]], int],
        clock: EventClock,
        hooks: Sequence[AfterCommit] = (),
        complaints: ComplaintSink | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._dsn = settings.require_database()
        self._timeouts = Timeouts.from_settings(settings)
        self._batch_size = settings.batch_size
        self._linger_s = settings.flush_ms / 1000
        self._inbox = inbox
        self._ack = ack
        self._clock = clock
        self._hooks = list(hooks)
        self._complaints = complaints
        self._on_fatal = on_fatal
        self._conn: Conn | None = None
        self._cache = StateCache()
        self._refusals = RateLimitedLog(log, REFUSAL_LOG_EVERY_S)
        self._budget = RejectBudget(settings.rejected_per_terminal_per_min)
        self._retention = timedelta(days=settings.rejected_retention_days)
        self._next_prune = 0.0
        self._abandon = threading.Event()
        self._down_since: float | None = None
        self._backoff = BACKOFF_MIN_S
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        self._processed = 0
        self._in_flight = 0
        self._in_flight_since: float | None = None
        self._last_commit = time.monotonic()
        self.error: BaseException | None = None
        QUEUE_DEPTH.set_function(lambda: len(self._inbox) + self._in_flight)
        OLDEST_UNACKED.set_function(self.oldest_unacknowledged_s)
        #: Seconds to write and commit each recent batch (for benchmarks and diagnostics).
        self.commit_seconds: deque[float] = deque(maxlen=100_000)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="termwatch-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Commit and acknowledge what the inbox holds, then stop. If that takes longer than
        ``timeout_s`` (the database is away), give up on it: it stays unacknowledged.
        Returns True when everything taken in was committed."""
        self._inbox.close()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join(BACKOFF_MAX_S + 5)
            return False
        return self.error is None

    def oldest_unacknowledged_s(self) -> float:
        """Seconds the oldest message taken in and not yet acknowledged has waited."""
        times = [t for t in (self._in_flight_since, self._inbox.oldest_at()) if t is not None]
        return time.monotonic() - min(times) if times else 0.0

    def healthy(self, stall_s: float = 30.0) -> bool:
        """True while the writer runs and commits: no fatal error, and either nothing waits
        or a batch was committed in the last ``stall_s`` seconds."""
        if self.error is not None or self._thread is None or not self._thread.is_alive():
            return False
        waiting = self._in_flight or len(self._inbox)
        return not waiting or time.monotonic() - self._last_commit < stall_s

    @property
    def processed(self) -> int:
        """Messages handled so far (stored, duplicate or rejected, all committed)."""
        return self._processed

    def wait_processed(self, count: int, timeout_s: float) -> bool:
        """Wait until ``count`` messages have been handled in total; False on timeout."""
        with self._done:
            return (
                self._done.wait_for(
                    lambda: self._processed >= count or self.error is not None, timeout_s
                )
                and self._processed >= count
            )

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._connection()
            next_tick = time.monotonic() + TICK_S
            while True:
                wait = max(0.0, next_tick - time.monotonic())
                batch = self._inbox.take(self._batch_size, self._linger_s, wait)
                if batch:
                    self._handle(batch)
                elif self._inbox.closed:
                    break
                if time.monotonic() >= next_tick:
                    self._tick()
                    next_tick = time.monotonic() + TICK_S
        except Abandoned:
            log.warning("stopped with messages not committed; the broker will deliver them again")
        except BaseException as exc:
            self.error = exc
            log.critical("the writer stopped on an unexpected error", exc_info=exc)
            with self._done:
                self._done.notify_all()
            if self._on_fatal is not None:
                self._on_fatal(exc)
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _handle(self, batch: list[Received]) -> None:
        self._in_flight_since = self._inbox.taken_at
        self._in_flight = len(batch)
        stamps: list[tuple[str, datetime]] = []
        for item in batch:
            message = item.result.message if isinstance(item.result, Decoded) else None
            if isinstance(message, Status | Event | Operation | Heartbeat):
                stamps.append((message.tid, message.ts))
        now = self._clock.observe(stamps) if stamps else self._clock.now()
        if now is not None:
            EVENT_CLOCK.set(now.timestamp())
        started = time.perf_counter()
        outcome = self._commit(batch, now)
        elapsed = time.perf_counter() - started
        self._ack(batch)
        self.commit_seconds.append(elapsed)
        COMMIT_SECONDS.observe(elapsed)
        BATCH_SIZE.observe(len(batch))
        for (kind, result), count in outcome.counts.items():
            MESSAGES.labels(kind, result).inc(count)
        for reason, count in outcome.reasons.items():
            REJECTED.labels(reason).inc(count)
        self._in_flight = 0
        self._in_flight_since = None
        self._last_commit = time.monotonic()
        with self._done:
            self._processed += len(batch)
            self._done.notify_all()
        if len(outcome.stored):
            self._call_hooks(outcome.stored)

    def _tick(self) -> None:
        now = self._clock.now()
        if now is None:
            return
        EVENT_CLOCK.set(now.timestamp())
        changes: list[AvailabilityChange] = []
        if self._conn is not None:
            try:
                liveness.record_offsets(
                    self._conn, self._clock.offsets(), now, self._clock.take_cleared()
                )
                changes = liveness.mark_silent(self._conn, now)
            except errors.TransactionRollback:
                pass  # another collector holds those rows: the next tick looks again
            except psycopg.OperationalError as exc:
                self._lost(exc)
            if self._conn is not None and time.monotonic() >= self._next_prune:
                self._prune(self._conn)
        if changes:
            self._call_hooks(StoredBatch(now=now, availability=changes))
        for hook in self._hooks:
            try:
                hook.tick(now)
            except Exception as exc:  # a hook's failure must not stop storage
                self._hook_failed(hook, exc)

    def _prune(self, conn: Conn) -> None:
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            pruned = store.prune_rejected(conn, datetime.now(UTC) - self._retention)
        except psycopg.OperationalError as exc:
            self._lost(exc)
            return
        if pruned:
            log.info("pruned %d rejected messages older than %s", pruned, self._retention)

    def _call_hooks(self, stored: StoredBatch) -> None:
        for hook in self._hooks:
            try:
                hook.after_commit(stored)
            except Exception as exc:  # a hook's failure must not stop storage
                self._hook_failed(hook, exc)

    def _hook_failed(self, hook: object, exc: Exception) -> None:
        name = type(hook).__name__
        HOOK_ERRORS.labels(name).inc()
        log.error("hook %s failed (the batch is committed)", name, exc_info=exc)

    # -- committing ---------------------------------------------------------------------------

    def _commit(self, items: list[Received], now: datetime | None) -> _Outcome:
        """Write ``items`` in one transaction, retrying until committed (see module doc)."""
        deadlocks = 0
        uncertain = False  # a connection was lost: did its commit happen? (see _write)
        while True:
            conn = self._connection()
            try:
                with conn.transaction():
                    outcome = self._write(conn, items, now, uncertain)
                self._cache.update(outcome.written)
                return outcome
            except errors.TransactionRollback as exc:
                deadlocks += 1
                if deadlocks > DEADLOCK_RETRIES:
                    self._lost(exc)
            except psycopg.OperationalError as exc:
                uncertain = True
                self._lost(exc)
            except _ROW_ERRORS as exc:
                if len(items) == 1:
                    return self._commit_unstorable(items[0], exc, now)
                half = len(items) // 2
                first = self._commit(items[:half], now)
                return first.merge(self._commit(items[half:], now))

    def _commit_unstorable(self, item: Received, exc: Exception, now: datetime | None) -> _Outcome:
        """Keep a message the database refused as rejected (``unstorable``)."""
        result = item.result
        if isinstance(result, Rejected) and result.reason == UNSTORABLE:
            raise exc  # not even its printable form could be kept: a bug, not bad input
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:1000]
        self._refusals.warn(f"the database refused a {result.kind} message: {detail}")
        if isinstance(result, Decoded):
            rejected = Rejected(
                result.kind, result.topic, result.tid, UNSTORABLE, detail, bytes(item.payload[:256])
            )
        else:  # the rejection itself could not be stored: keep only printable text
            rejected = Rejected(
                result.kind, repr(result.topic)[:500], None, UNSTORABLE, detail, result.head
            )
        return self._commit([Received(rejected, item.mid, item.qos, item.generation)], now)

    def _write(
        self, conn: Conn, items: list[Received], now: datetime | None, uncertain: bool = False
    ) -> _Outcome:
        """Store ``items``. After a lost connection (``uncertain``) the rows found already
        stored may be this batch's own, committed just before the cut and never judged:
        they are handed to the hooks again (still counted as duplicates, moving no state);
        the rules' effects are idempotent."""
        outcome = _Outcome(StoredBatch(now=now))
        counts = outcome.counts
        by_kind: dict[str, list[Decoded]] = {kind: [] for kind in TELEMETRY_KINDS}
        keys: set[store.Key] = set()
        arrival: list[Decoded] = []  # telemetry (first of each key) and availability words
        complaints: list[Decoded] = []
        rejected: list[Rejected] = []
        for item in items:
            result = item.result
            if isinstance(result, Rejected):
                rejected.append(result)
                continue
            kind = result.kind
            if kind in by_kind:
                key = store.key(result)
                if key in keys:
                    counts[(kind, "duplicate")] += 1  # the same message twice in one batch
                    continue
                keys.add(key)
                by_kind[kind].append(result)
                arrival.append(result)
            elif kind == "availability":
                arrival.append(result)
            else:
                complaints.append(result)
        known: set[int] = set()  # id() of the messages that were already stored
        stored = outcome.stored
        for kind, messages in by_kind.items():
            duplicates = store.insert_new(conn, kind, messages)
            known.update(id(messages[i]) for i in duplicates)
            counts[(kind, "stored")] += len(messages) - len(duplicates)
            counts[(kind, "duplicate")] += len(duplicates)
            new = [d.message for d in messages if uncertain or id(d) not in known]
            getattr(stored, _STORED[kind]).extend(new)
        if known:
            arrival = [d for d in arrival if id(d) not in known]
        changes = state.apply(
            conn, arrival, datetime.now(UTC), self._cache, offsets=self._clock.offsets()
        )
        stored.availability.extend(changes.availability)
        outcome.written = changes.written
        words = [p for p, d in enumerate(arrival) if d.kind == "availability"]
        if words:
            changed = len(changes.changed_words)
            counts[("availability", "stored")] += changed
            counts[("availability", "duplicate")] += len(words) - changed
        if complaints and self._complaints is not None:
            ids = self._complaints.store(conn, [_complaint(d) for d in complaints])
            stored.complaints.extend(i for i in ids if i is not None)
        if rejected:
            store.insert_rejected(conn, self._budget.keep(rejected))
            for r in rejected:
                if r.kind in KINDS:
                    counts[(r.kind, "rejected")] += 1
                outcome.reasons[r.reason] += 1
        return outcome

    # -- the database connection --------------------------------------------------------------

    def _connection(self) -> Conn:
        while self._conn is None:
            try:
                conn = connect(self._dsn, autocommit=True, timeouts=self._timeouts)
            except psycopg.OperationalError as exc:
                self._lost(exc)
                continue
            try:
                store.prepare(conn)
                state.prepare(conn)
            except psycopg.OperationalError as exc:
                conn.close()
                self._lost(exc)
                continue
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            DATABASE_UP.set(1)
            if self._down_since is not None:
                log.info("database is back after %.0f s", time.monotonic() - self._down_since)
                self._down_since = None
                self._backoff = BACKOFF_MIN_S
        return self._conn

    def _lost(self, exc: Exception) -> None:
        """Drop the connection and wait before the next attempt (logged once per outage)."""
        DATABASE_UP.set(0)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("database unavailable, holding messages unacknowledged: %s", exc)
        if self._abandon.wait(self._backoff):
            raise Abandoned
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)


def _complaint(decoded: Decoded) -> Complaint:
    assert isinstance(decoded.message, Complaint)
    return decoded.message
