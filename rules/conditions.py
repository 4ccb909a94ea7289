"""Evaluating one rule for one terminal at one event time. Pure functions: no database.

Each function answers the same questions (:class:`Evaluation`): does the condition hold now,
since when has it been proven (the incident's ``opened_at``), when did it stop holding, and
when might the answer change without any new message (``recheck_at``: a ``for`` running out,
a count window emptying, heartbeats becoming overdue).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.facts import EventFact, OpFact
from rules.model import (
    AbsenceClause,
    ClockClause,
    ComplaintClause,
    CountClause,
    EventMatch,
    OpMatch,
    Rule,
)


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str  # incident_evidence.kind
    ref: str
    ts: datetime
    summary: str


@dataclass(slots=True)
class Evaluation:
    holds: bool = False
    proof_ts: datetime | None = None  # set when the condition holds and is proven
    fault_start: datetime | None = None  # when the current episode began
    latest: datetime | None = None  # the newest evidence (new evidence can reopen)
    stopped_at: datetime | None = None  # when it stopped holding, if it did
    recheck_at: datetime | None = None
    summary: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    operations: list[OpFact] = field(default_factory=list)

    @property
    def proven(self) -> bool:
        return self.holds and self.proof_ts is not None

    @property
    def newest_evidence(self) -> datetime | None:
        return self.latest if self.latest is not None else self.proof_ts

    def merge(self, other: Evaluation) -> None:
        """Combine alternatives: the rule holds while any of its conditions holds."""
        if (
            other.proof_ts is not None
            and other.holds
            and (self.proof_ts is None or other.proof_ts < self.proof_ts)
        ):
            self.proof_ts = other.proof_ts
            self.summary = other.summary
        if other.holds and not self.summary:
            self.summary = other.summary
        self.holds = self.holds or other.holds
        self.fault_start = _min(self.fault_start, other.fault_start if other.holds else None)
        if other.proven:
            self.latest = _max(self.latest, other.newest_evidence)
        self.stopped_at = _max(self.stopped_at, other.stopped_at)
        self.recheck_at = _min(self.recheck_at, other.recheck_at)
        self.evidence.extend(other.evidence)
        self.operations.extend(other.operations)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


@dataclass(frozen=True, slots=True)
class FieldState:
    value: str
    since: datetime


def hhmm(ts: datetime) -> str:
    """Times in incident summaries are UTC: rows and messages carry different offsets."""
    return ts.astimezone(UTC).strftime("%H:%M UTC")


def evaluate_state(
    rule: Rule, devices: Mapping[tuple[str, str], FieldState], now: datetime
) -> Evaluation:
    """The state conditions of ``rule`` on the terminal's current device state."""
    result = Evaluation()
    for clause in rule.state_clauses:
        state = devices.get((clause.device, clause.field))
        if state is None:
            continue
        if state.value not in clause.values:
            result.stopped_at = _max(result.stopped_at, state.since)
            continue
        due = state.since + rule.for_
        one = Evaluation(holds=True, fault_start=state.since)
        one.summary = f"{clause.device}.{clause.field} {state.value} since {hhmm(state.since)}"
        if rule.for_ <= timedelta(0) or due <= now:
            one.proof_ts = due
        else:
            one.recheck_at = due
        one.evidence.append(
            Evidence(
                "status",
                f"{clause.device}.{clause.field}@{state.since.isoformat()}",
                state.since,
                one.summary,
            )
        )
        result.merge(one)
    if result.holds:
        result.stopped_at = None
    return result


def _event_hits(match: EventMatch, items: Sequence[EventFact]) -> list[EventFact]:
    return [e for e in items if match.matches(e.name, e.device, e.payload)]


def _op_hits(match: OpMatch, items: Sequence[OpFact]) -> list[OpFact]:
    return [o for o in items if match.matches(o.steps, o.money_at_risk_minor)]


def evaluate_count(
    clause: CountClause,
    items: Sequence[EventFact] | Sequence[OpFact],
    now: datetime,
) -> Evaluation:
    """At least ``at_least`` matching items within ``within`` before ``now``, counting only
    items after the newest reset. ``items`` must reach back two windows (for ``stopped_at``);
    for an ``until_reset`` clause, to a window before the incident opened: once that many
    items fell within one window after the newest reset, it holds until a reset arrives.
    """
    hits: list[Any]
    resets: list[Any]
    if isinstance(clause.match, EventMatch):
        events = [i for i in items if isinstance(i, EventFact)]
        hits = _event_hits(clause.match, events)
        resets = _event_hits(clause.reset, events) if isinstance(clause.reset, EventMatch) else []
    else:
        ops = [i for i in items if isinstance(i, OpFact)]
        hits = _op_hits(clause.match, ops)
        resets = _op_hits(clause.reset, ops) if isinstance(clause.reset, OpMatch) else []
    hits.sort(key=lambda i: i.ts)
    last_reset = max((r.ts for r in resets), default=None)
    after_reset = [h for h in hits if last_reset is None or h.ts > last_reset]
    counted = [h for h in after_reset if h.ts > now - clause.within]
    if clause.until_reset and len(counted) < clause.at_least:
        n = clause.at_least
        for i in range(len(after_reset) - n + 1):
            if after_reset[i + n - 1].ts - after_reset[i].ts < clause.within:
                counted = after_reset[i:]
                break
    result = Evaluation()
    if len(counted) >= clause.at_least:
        result.holds = True
        result.proof_ts = counted[clause.at_least - 1].ts
        result.latest = counted[-1].ts
        result.fault_start = counted[0].ts
        if not clause.until_reset:
            result.recheck_at = counted[len(counted) - clause.at_least].ts + clause.within
        result.summary = f"{len(counted)} x {_what(clause)} since {hhmm(counted[0].ts)}"
        for hit in counted:
            if isinstance(hit, OpFact):
                result.operations.append(hit)  # linked (and counted) as operations
            else:
                result.evidence.append(Evidence("event", hit.msg_id, hit.ts, _describe_event(hit)))
        return result
    if last_reset is not None and (not hits or last_reset > hits[-1].ts):
        result.stopped_at = last_reset
    elif len(after_reset) >= clause.at_least:
        result.stopped_at = after_reset[-clause.at_least].ts + clause.within
    return result


def _what(clause: CountClause) -> str:
    if isinstance(clause.match, EventMatch):
        return clause.match.name
    step = clause.match.step or "operation"
    return f"{step} failed"


def _describe_event(event: EventFact) -> str:
    details = ", ".join(f"{k}={v}" for k, v in event.payload.items() if isinstance(v, str | int))
    return f"{event.name} ({details})" if details else event.name


def evaluate_absence(
    clause: AbsenceClause,
    terminal: Mapping[str, Any],
    now: datetime,
    resumed_at: datetime | None = None,
) -> Evaluation:
    """No telemetry for ``missed_heartbeats`` x the terminal's interval, or availability
    ``offline`` newer than its last message. ``terminal`` is its ``terminal_state`` row;
    ``resumed_at`` is the first event time seen after an outage, when known."""
    interval = timedelta(seconds=int(terminal["heartbeat_interval_s"] or 60))
    last_seen: datetime = terminal["last_seen"]
    changed: datetime = terminal["online_changed_at"]
    # An availability word carries no time; one stamped later than event time "now" (by the
    # wall clock, before the event clock had a reading) says nothing about when.
    changed_known = changed <= now
    spoke = last_seen
    if terminal["online"] and changed_known and changed > last_seen:
        spoke = changed  # it said "online": a full window from then
    stale_at = spoke + clause.missed_heartbeats * interval
    said_offline = (
        clause.availability
        and not terminal["online"]
        and terminal.get("offline_reason") != "heartbeat"
        and changed_known
        and changed >= last_seen
    )
    result = Evaluation(fault_start=last_seen)
    if stale_at <= now:
        result.holds = True
        result.proof_ts = stale_at
        result.summary = (
            f"no telemetry since {hhmm(last_seen)} "
            f"({clause.missed_heartbeats} x {int(interval.total_seconds())} s heartbeats missed)"
        )
        result.evidence.append(
            Evidence("heartbeat", f"last_seen@{last_seen.isoformat()}", last_seen, result.summary)
        )
    if said_offline:
        at: datetime = terminal["online_changed_at"]
        if result.proof_ts is None or at < result.proof_ts:
            result.proof_ts = at
            result.summary = f"availability offline at {hhmm(at)}"
        result.holds = True
        result.evidence.append(
            Evidence(
                "availability",
                f"offline@{at.isoformat()}",
                at,
                f"availability offline at {hhmm(at)}",
            )
        )
    if not result.holds:
        result.fault_start = None
        result.stopped_at = resumed_at or last_seen
        result.recheck_at = stale_at
    return result


def evaluate_complaints(
    clause: ComplaintClause,
    complaints: Sequence[Mapping[str, Any]],
    now: datetime,
    incident_id: int | None = None,
) -> Evaluation:
    """``complaints``: rows (``ref``, ``received_at``, ``category``, ``incident_id``) of one
    terminal. Opening needs ``at_least`` unexplained ones within ``within``; an open incident
    (``incident_id``) holds while its newest complaint is younger than ``quiet_for``."""
    relevant = sorted(
        (c for c in complaints if c["category"] in clause.categories),
        key=lambda c: c["received_at"],
    )
    result = Evaluation()
    if incident_id is not None:
        own = [c for c in relevant if c["incident_id"] == incident_id]
        if own:
            newest: datetime = own[-1]["received_at"]
            if newest + clause.quiet_for > now:
                result.holds = True
                result.proof_ts = own[0]["received_at"]
                result.recheck_at = newest + clause.quiet_for
                result.summary = f"{len(own)} complaints, the last at {hhmm(newest)}"
            else:
                result.stopped_at = newest + clause.quiet_for
        return result
    window = [
        c for c in relevant if c["incident_id"] is None and c["received_at"] > now - clause.within
    ]
    if len(window) >= clause.at_least:
        result.holds = True
        result.proof_ts = window[clause.at_least - 1]["received_at"]
        result.latest = window[-1]["received_at"]
        result.fault_start = window[0]["received_at"]
        result.recheck_at = window[-1]["received_at"] + clause.quiet_for
        result.summary = (
            f"{len(window)} complaints since {hhmm(window[0]['received_at'])} "
            "that no device incident explains"
        )
        for c in window:
            result.evidence.append(
                Evidence(
                    "complaint",
                    c["ref"],
                    c["received_at"],
                    f"complaint {c['ref']}: {c['category']}",
                )
            )
    return result


def count_touches(clause: CountClause, item: EventFact | OpFact, has_open: bool) -> bool:
    """Whether ``item`` can change ``clause``: it matches, or it resets an open incident."""
    if isinstance(item, EventFact):
        if not isinstance(clause.match, EventMatch):
            return False
        if clause.match.matches(item.name, item.device, item.payload):
            return True
        reset = clause.reset
        return (
            has_open
            and isinstance(reset, EventMatch)
            and reset.matches(item.name, item.device, item.payload)
        )
    if not isinstance(clause.match, OpMatch):
        return False
    if clause.match.matches(item.steps, item.money_at_risk_minor):
        return True
    reset = clause.reset
    return (
        has_open
        and isinstance(reset, OpMatch)
        and reset.matches(item.steps, item.money_at_risk_minor)
    )


def describe_offset(offset_s: float) -> str:
    """``2 h 03 min ahead`` / ``7 min behind`` / ``40 s ahead``."""
    seconds = abs(round(offset_s))
    way = "ahead" if offset_s > 0 else "behind"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min {way}"
    if seconds >= 60:
        return f"{seconds // 60} min {way}"
    return f"{seconds} s {way}"


def evaluate_clock(
    clause: ClockClause, offset_s: float | None, measured_at: datetime | None, now: datetime
) -> Evaluation:
    """The terminal's clock offset against the fleet (``terminal_clock``; None when it is
    right) is beyond the bound. Proven at the measurement's event time."""
    result = Evaluation()
    if offset_s is None or abs(offset_s) <= clause.off_by_more_than.total_seconds():
        result.stopped_at = now
        return result
    at = measured_at if measured_at is not None and measured_at <= now else now
    result.holds = True
    result.proof_ts = at
    result.fault_start = at
    result.latest = at
    result.summary = f"clock {describe_offset(offset_s)} of the fleet ({offset_s:+.0f} s)"
    return result
