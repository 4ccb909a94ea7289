"""The rule engine: run in the collector process after each commit, and on its ticks.

Two paths, both on event time:

* ``after_commit(batch)`` looks only at the terminals the batch touched, and only at the
  rules the batch's messages can change (a state value a condition names, an event or
  operation a count matches, a terminal with an open incident). In the steady state, with no
  faults, that is one indexed query per batch.
* the *sweep* (from ``tick(now)``, and from ``after_commit`` whenever the event clock moved
  on by ``sweep_step``) does what time alone changes: heartbeats becoming overdue, a ``for``
  running out, a count window emptying, ``clear_for`` running out, silences ending. It reads
  the current-state tables through indexes (terminals silent for long, device fields in a
  fault value, incidents due a check), never the history of the fleet. Every
  ``reconcile_every`` it also re-checks every terminal in a fault state, which opens what
  inhibition or service mode held back and repairs anything a failed hook call missed.

The engine keeps no incident state in memory: several collectors can run it at once, and
the database (unique index, compare-and-set updates) keeps one incident per fault.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors

from collector.hooks import StoredBatch
from rules import catchup, config, incidents, reads, silences
from rules.conditions import (
    Evaluation,
    Evidence,
    FieldState,
    count_touches,
    evaluate_absence,
    evaluate_clock,
    evaluate_complaints,
    evaluate_count,
    evaluate_state,
    hhmm,
)
from rules.facts import (
    SERVICE_MODE,
    OpFact,
    StateValue,
    event_from_message,
    op_from_message,
    state_values,
    touched,
)
from rules.incidents import TerminalFacts
from rules.journal import Changes, Conn
from rules.model import AbsenceClause, Rule, RuleSet
from termwatch.db import Row, connect
from termwatch.metrics import RULE_SECONDS
from termwatch.settings import Settings

log = logging.getLogger(__name__)
_RETRIES = 3
#: Most batches kept while the database is away (the oldest are dropped first).
_PENDING_MAX = 10_000
#: How often the fleet's shortest heartbeat interval is read again (heartbeats the engine sees
#: lower it at once).
_INTERVAL_EVERY = timedelta(minutes=10)
_DEFAULT_ABSENCE = AbsenceClause(missed_heartbeats=3)


@dataclass(slots=True)
class _Candidate:
    """A (terminal, rule) pair the batch may have changed."""

    held: list[StateValue] = field(default_factory=list)  # values in the batch that held


class RuleEngine:
    """Implements :class:`collector.hooks.AfterCommit`. Thread-safe; one connection of its own."""

    def __init__(self, settings: Settings, dsn: str, rules: RuleSet | None = None) -> None:
        self.rules = rules if rules is not None else config.load_rules(settings.rules_file)
        self.sweep_step = timedelta(seconds=1)
        self.reconcile_every = timedelta(seconds=60)
        self._dsn = dsn
        self._conn: Conn | None = None
        self._lock = threading.Lock()
        self._last_sweep: datetime | None = None
        self._last_reconcile: datetime | None = None
        self._next_silence_end: datetime | None = None
        self._shortest_interval: timedelta | None = None
        self._interval_checked: datetime | None = None
        self._by_field: dict[tuple[str, str], list[Rule]] = defaultdict(list)
        #: Terminals whose telemetry is in the batch being judged.
        self._speaking: set[str] = set()
        #: Batches not judged yet: the database was lost while judging them.
        self._pending: list[StoredBatch] = []
        for rule in self.rules.state_rules:
            for clause in rule.state_clauses:
                if rule not in self._by_field[(clause.device, clause.field)]:
                    self._by_field[(clause.device, clause.field)].append(rule)
        offline = self.rules.offline_rule
        self._absence = offline.absence if offline and offline.absence else _DEFAULT_ABSENCE

    # -- the AfterCommit protocol ---------------------------------------------------------

    def after_commit(self, batch: StoredBatch) -> None:
        """Evaluate what ``batch`` can have changed, then sweep if the clock moved on enough.

        A batch the database could not take (connection lost, outage) is kept and judged
        before anything else on the next call or tick; the error still reaches the caller,
        which counts it."""
        with self._lock:
            self._pending.append(batch)
            self._judge_pending()

    def _judge_pending(self) -> None:
        """Judge the batches kept, oldest first; stop (keeping the rest) at a lost database."""
        while self._pending:
            try:
                self._judge(self._pending[0])
            except psycopg.OperationalError:
                del self._pending[:-_PENDING_MAX]  # beyond that, the reconcile repairs
                raise
            except Exception:
                self._pending.pop(0)  # a batch the rules cannot judge never blocks the next
                raise
            self._pending.pop(0)

    def _judge(self, batch: StoredBatch) -> None:
        now = batch.now or _newest(batch)
        if now is None:
            return
        started = time.perf_counter()
        for heartbeat in batch.heartbeats:
            seconds = timedelta(seconds=heartbeat.interval_s)
            if self._shortest_interval is not None and seconds < self._shortest_interval:
                self._shortest_interval = seconds
        sweep = self._sweep_due(now)

        def work(conn: Conn, changes: Changes) -> None:
            try:
                self._on_batch(conn, batch, now, changes)
            finally:
                self._speaking = set()
            if sweep:
                self._sweep(conn, now, changes)

        self._run(work)
        RULE_SECONDS.observe(time.perf_counter() - started)

    def tick(self, now: datetime) -> None:
        """Do what the passing of event time alone changes (at most once per ``sweep_step``)."""
        with self._lock:
            self._judge_pending()
            if not self._sweep_due(now):
                return
            started = time.perf_counter()
            self._run(lambda conn, changes: self._sweep(conn, now, changes))
            RULE_SECONDS.observe(time.perf_counter() - started)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- plumbing -------------------------------------------------------------------------

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn, autocommit=True)
        return self._conn

    def _run(self, work: Any) -> None:
        """Run ``work(conn, changes)`` in one transaction, retrying a deadlock or a
        serialization failure (two collectors touching one incident) a few times."""
        for attempt in range(1, _RETRIES + 1):
            changes = Changes()
            conn = self._connection()
            try:
                with conn.transaction():
                    work(conn, changes)
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                if attempt == _RETRIES:
                    raise
                log.info("rules: retrying after %s (attempt %d)", type(exc).__name__, attempt)
                continue
            except psycopg.OperationalError as exc:
                # The connection is gone (the transaction rolled back): try a new one; when
                # the database stays away, the caller keeps the work and counts the error.
                self._conn = None
                if attempt == _RETRIES:
                    raise
                log.info("rules: retrying after a lost connection: %s", exc)
                continue
            changes.publish()
            return

    def _sweep_due(self, now: datetime) -> bool:
        return self._last_sweep is None or now - self._last_sweep >= self.sweep_step

    def _reconcile_due(self, now: datetime) -> bool:
        return self._last_reconcile is None or now - self._last_reconcile >= self.reconcile_every

    # -- after a commit -------------------------------------------------------------------

    def _on_batch(self, conn: Conn, batch: StoredBatch, now: datetime, changes: Changes) -> None:
        spans = touched(batch)
        if not spans:
            return
        # A terminal whose telemetry is in this batch is talking now, however old the
        # stamps (a store-and-forward queue being flushed): not offline for inhibition.
        self._speaking = {
            m.tid for m in (*batch.status, *batch.events, *batch.operations, *batch.heartbeats)
        }
        open_map = incidents.fetch_open(conn, sorted(spans))
        candidates: dict[tuple[str, str], _Candidate] = {}
        rules = self.rules

        for value in state_values(batch):
            for rule in self._by_field.get((value.device, value.field), ()):
                holding = any(
                    c.device == value.device and c.field == value.field and value.value in c.values
                    for c in rule.state_clauses
                )
                incident = open_map.get((value.tid, rule.kind))
                # Nothing changes when the fault goes on (open, not clearing) or stays gone
                # (clearing already): no evaluation then.
                if holding and (incident is None or incident["cleared_at"] is not None):
                    candidates.setdefault((value.tid, rule.name), _Candidate()).held.append(value)
                elif holding:
                    candidates.get((value.tid, rule.name), _Candidate()).held.append(value)
                elif incident is not None and incident["cleared_at"] is None:
                    candidates.setdefault((value.tid, rule.name), _Candidate())

        released = {c.tid for c in batch.availability if c.state == "online"}
        released |= {
            e.tid
            for e in batch.events
            if e.name == SERVICE_MODE and e.payload.get("state") == "left"
        }
        offline = rules.offline_rule
        if offline is not None:
            released |= {tid for tid in spans if (tid, offline.kind) in open_map}
            for tid in released | {c.tid for c in batch.availability if c.state == "offline"}:
                candidates.setdefault((tid, offline.name), _Candidate())
        for tid in released:
            for rule in rules.state_rules:
                candidates.setdefault((tid, rule.name), _Candidate())

        events = [event_from_message(e) for e in batch.events]
        ops = [op_from_message(o) for o in batch.operations]
        for rule in rules.rules:
            for clause in rule.count_clauses:
                for item in events if clause.source == "events" else ops:
                    if count_touches(clause, item, (item.tid, rule.kind) in open_map):
                        candidates.setdefault((item.tid, rule.name), _Candidate())

        if candidates:
            self._evaluate_candidates(conn, candidates, open_map, now, spans, changes)
        self._link_batch_operations(conn, ops, open_map)
        catchup.operations_stored(conn, self.rules, ops, now)

    def _evaluate_candidates(
        self,
        conn: Conn,
        candidates: Mapping[tuple[str, str], _Candidate],
        open_map: Mapping[tuple[str, str], Row],
        now: datetime,
        spans: Mapping[str, tuple[datetime, datetime]],
        changes: Changes,
    ) -> None:
        state_tids = {tid for (tid, name) in candidates if self._rule(name).state_clauses}
        devices = reads.device_state(conn, state_tids)
        terminals = incidents.fetch_terminals(conn, {tid for tid, _ in candidates})
        for tid, name in sorted(candidates):
            rule = self._rule(name)
            incident = open_map.get((tid, rule.kind))
            ev = self._evaluate(
                conn,
                rule,
                tid,
                now,
                devices.get(tid, {}),
                terminals[tid],
                incident,
                spans.get(tid, (None, None))[0],
            )
            self._apply(
                conn, rule, terminals[tid], ev, incident, now, changes, candidates[(tid, name)].held
            )

    def _link_batch_operations(
        self, conn: Conn, ops: Iterable[OpFact], open_map: Mapping[tuple[str, str], Row]
    ) -> None:
        by_tid: dict[str, list[Row]] = defaultdict(list)
        for (tid, _kind), row in open_map.items():
            by_tid[tid].append(row)
        for op in ops:
            for row in by_tid.get(op.tid, ()):
                rule = self.rules.by_kind(row["kind"])
                if (
                    rule is not None
                    and op.ts >= row["opened_at"] - rule.for_
                    and rule.affected_by(op.steps, op.money_at_risk_minor)
                ):
                    incidents.link_operations(conn, row, [op])

    # -- the sweep ------------------------------------------------------------------------

    def _sweep(self, conn: Conn, now: datetime, changes: Changes) -> None:
        reconcile = self._reconcile_due(now)
        self._sweep_absence(conn, now, changes)
        self._sweep_clock(conn, now, changes)
        self._sweep_state(conn, now, changes, all_rules=reconcile)
        self._sweep_due_checks(conn, now, changes)
        # A silence made since the last look may end before the one expected: the reconcile
        # looks at them all again.
        if reconcile or self._next_silence_end is None or self._next_silence_end <= now:
            silences.unsilence_uncovered(conn, now, actor="silences", note="silence ended")
            self._next_silence_end = silences.next_end(conn, now) or now + self.reconcile_every
        self._last_sweep = now
        if reconcile:
            self._last_reconcile = now

    def _sweep_absence(self, conn: Conn, now: datetime, changes: Changes) -> None:
        rule = self.rules.offline_rule
        if rule is None or rule.absence is None:
            return
        if self._interval_checked is None or now - self._interval_checked >= _INTERVAL_EVERY:
            self._shortest_interval = reads.shortest_interval(conn)
            self._interval_checked = now
        assert self._shortest_interval is not None
        clause = rule.absence
        tids = reads.silent_terminals(
            conn, rule, clause.missed_heartbeats, now, self._shortest_interval
        )
        terminals = incidents.fetch_terminals(conn, tids)
        for tid in sorted(terminals):
            facts = terminals[tid]
            if facts.state is None:
                continue
            ev = evaluate_absence(clause, facts.state, now)
            if ev.proven:
                self._apply(conn, rule, facts, ev, None, now, changes, [])

    def _sweep_clock(self, conn: Conn, now: datetime, changes: Changes) -> None:
        """Terminals whose clock offset is beyond a clock rule's bound, and those with such an
        incident open (to resolve once their clock is right)."""
        for rule in self.rules.clock_rules:
            clause = rule.clock_clause
            assert clause is not None
            rows = conn.execute(
                "SELECT tid FROM terminal_clock WHERE abs(offset_s) > %s"
                " UNION SELECT tid FROM incidents WHERE kind = %s AND status <> 'resolved'"
                " ORDER BY 1",
                (clause.off_by_more_than.total_seconds(), rule.kind),
            ).fetchall()
            tids = [r["tid"] for r in rows]
            if not tids:
                continue
            terminals = incidents.fetch_terminals(conn, tids)
            open_map = incidents.fetch_open(conn, tids)
            for tid in tids:
                if tid not in terminals:
                    continue
                incident = open_map.get((tid, rule.kind))
                ev = self._evaluate(conn, rule, tid, now, {}, terminals[tid], incident, None)
                self._apply(conn, rule, terminals[tid], ev, incident, now, changes, [])

    def _sweep_state(self, conn: Conn, now: datetime, changes: Changes, *, all_rules: bool) -> None:
        found: set[tuple[str, str]] = set()
        for rule in self.rules.state_rules:
            if not all_rules and rule.for_ <= timedelta(0):
                continue
            for clause in rule.state_clauses:
                found.update(
                    (tid, rule.name) for tid in reads.terminals_in_fault(conn, rule, clause, now)
                )
        if not found:
            return
        tids = {tid for tid, _ in found}
        devices = reads.device_state(conn, tids)
        terminals = incidents.fetch_terminals(conn, tids)
        open_map = incidents.fetch_open(conn, sorted(tids))
        for tid, name in sorted(found):
            rule = self._rule(name)
            incident = open_map.get((tid, rule.kind))
            ev = self._evaluate(
                conn, rule, tid, now, devices.get(tid, {}), terminals[tid], incident, None
            )
            self._apply(conn, rule, terminals[tid], ev, incident, now, changes, [])

    def _sweep_due_checks(self, conn: Conn, now: datetime, changes: Changes) -> None:
        due = reads.due_incidents(conn, now, incidents.OPEN_COLUMNS)
        if not due:
            return
        tids = {r["tid"] for r in due}
        devices = reads.device_state(conn, tids)
        terminals = incidents.fetch_terminals(conn, tids)
        for row in due:
            rule = self.rules.by_kind(row["kind"])
            if rule is None:
                incidents.set_check(conn, row["id"], None, None)  # its rule was removed
                continue
            ev = self._evaluate(
                conn,
                rule,
                row["tid"],
                now,
                devices.get(row["tid"], {}),
                terminals[row["tid"]],
                row,
                None,
            )
            self._apply(conn, rule, terminals[row["tid"]], ev, row, now, changes, [])

    # -- one rule, one terminal -----------------------------------------------------------

    def _rule(self, name: str) -> Rule:
        rule = self.rules.by_name(name)
        assert rule is not None
        return rule

    def _evaluate(
        self,
        conn: Conn,
        rule: Rule,
        tid: str,
        now: datetime,
        devices: Mapping[tuple[str, str], FieldState],
        terminal: TerminalFacts,
        incident: Mapping[str, Any] | None,
        resumed_at: datetime | None,
    ) -> Evaluation:
        if rule.absence is not None:
            if terminal.state is None:
                return Evaluation()
            return evaluate_absence(rule.absence, terminal.state, now, resumed_at)
        clock = rule.clock_clause
        if clock is not None:
            row = conn.execute(
                "SELECT offset_s, measured_at FROM terminal_clock WHERE tid = %s", (tid,)
            ).fetchone()
            return evaluate_clock(
                clock,
                row["offset_s"] if row else None,
                row["measured_at"] if row else None,
                now,
            )
        clause = rule.complaint_clause
        if clause is not None:
            rows = conn.execute(
                "SELECT ref, received_at, category, incident_id FROM complaints"
                " WHERE tid = %s AND received_at > %s ORDER BY received_at",
                (tid, now - max(clause.within, clause.quiet_for) * 2),
            ).fetchall()
            return evaluate_complaints(clause, rows, now, incident["id"] if incident else None)
        ev = evaluate_state(rule, devices, now)
        for count in rule.count_clauses:
            since = now - 2 * count.within
            if count.until_reset and incident is not None:
                since = min(since, incident["opened_at"] - count.within)
            ev.merge(evaluate_count(count, reads.count_items(conn, count, tid, since), now))
        if ev.holds:
            ev.stopped_at = None
        return ev

    def _offline(self, terminal: TerminalFacts, now: datetime) -> bool:
        if terminal.state is None:
            return False
        if terminal.tid in self._speaking and terminal.state.get("online"):
            return False
        return evaluate_absence(self._absence, terminal.state, now).holds

    def _apply(
        self,
        conn: Conn,
        rule: Rule,
        terminal: TerminalFacts,
        ev: Evaluation,
        incident: Mapping[str, Any] | None,
        now: datetime,
        changes: Changes,
        held: list[StateValue],
    ) -> None:
        """Turn an evaluation into incident changes (open, keep, clear, resolve)."""
        transient = None
        if not ev.holds and held and rule.for_ <= timedelta(0):
            # A fault value came and went within one batch: it held, briefly. Only a value
            # that moved the state counts (a late, older snapshot is history, not state).
            held = reads.applied(conn, held)
        if not ev.holds and held and rule.for_ <= timedelta(0):
            first = held[0]
            transient = Evaluation(holds=True, proof_ts=first.ts, fault_start=first.ts)
            transient.summary = f"{first.device}.{first.field} {first.value} at {hhmm(first.ts)}"
            transient.evidence.append(
                Evidence(first.source, first.msg_id, first.ts, transient.summary)
            )
        if incident is not None:
            if ev.holds:
                if incident["cleared_at"] is not None:
                    incidents.unclear(conn, incident, now, ev.recheck_at)
                elif ev.recheck_at != incident["check_at"]:
                    incidents.set_check(conn, incident["id"], ev.recheck_at, ev.newest_evidence)
                if ev.evidence:
                    incidents.add_evidence(conn, incident["id"], ev.evidence[-20:])
                if ev.operations:
                    incidents.link_operations(conn, incident, ev.operations)
                return
            cleared_at = incident["cleared_at"]
            if cleared_at is None or (
                transient is not None and ev.stopped_at and ev.stopped_at > cleared_at
            ):
                stopped = ev.stopped_at or now
                if cleared_at is not None:
                    incidents.unclear(conn, incident, now, None)
                incidents.mark_cleared(conn, rule, incident, stopped)
                cleared_at = stopped
            if cleared_at + rule.clear_for <= now:
                incidents.resolve_cleared(conn, incident, cleared_at + rule.clear_for, changes)
            return
        proof = ev if ev.proven else transient
        if proof is None:
            return
        if rule.inhibit_when_offline and self._offline(terminal, now):
            return
        opened = incidents.open_incident(conn, self.rules, rule, terminal, proof, now, changes)
        if opened is not None:
            row = conn.execute(
                "SELECT opened_at FROM incidents WHERE id = %s", (opened,)
            ).fetchone()
            if row is not None:
                catchup.incident_opened(conn, self.rules, terminal.tid, row["opened_at"], now)
        if opened is not None and not ev.holds:
            row = {"id": opened}
            stopped = ev.stopped_at or now
            incidents.mark_cleared(conn, rule, row, stopped)
            if stopped + rule.clear_for <= now:
                incidents.resolve_cleared(conn, row, stopped + rule.clear_for, changes)


def _newest(batch: StoredBatch) -> datetime | None:
    spans = touched(batch)
    return max((hi for _, hi in spans.values()), default=None)
