"""``termwatch evaluate``: how well termwatch's incidents match a simulation's ground truth.

Matching rules (docs/simulator.md, Evaluation):

* only incidents of the run's terminals, opened from the run's start until its end plus the
  tolerance, and not of severity ``minor`` (maintenance warnings) are counted; group
  parents (``is_group``) are left out and their children counted;
* an incident matches a fault of the same terminal and kind when it was opened between the
  fault's start (less a minute of clock slack) and its end plus the tolerance; the first
  incident of a fault detects it, later ones are duplicates; an incident matching no fault
  is false (unless it opened after the run ended);
* time to detect runs from the moment the fault met its rule (:func:`rule_met_at`: the
  fault's start for a device state, the rule's heartbeat window after the terminal's last
  message for a hung application, the N-th timed-out payment or complaint for a count or a
  complaint cluster, each plus the rule's ``for``) to ``detected_at``, the event clock's
  reading when the engine opened the incident (``opened_at`` is the event time of the
  proof, which may be earlier). The time from the fault's start is reported beside it;
* recall = detected / observable faults; precision = matching incidents / incidents;
* a complaint is matched when termwatch linked it to the right operation (or to none when
  the complaint is about none) and to an incident of its true cause (or to none).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from rules.config import RuleFileError, load_rules
from rules.model import AbsenceClause, ComplaintClause, CountClause, Rule, RuleSet, StateClause
from simulator.scenario import INCIDENT_KINDS
from simulator.timefmt import parse_duration
from simulator.truth import ComplaintRecord, FaultRecord, RunRecord, TruthError, read_truth
from termwatch.db import connect
from termwatch.settings import Settings

CLOCK_SLACK = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    tid: str
    kind: str
    opened_at: datetime
    is_group: bool = False
    parent_id: int | None = None
    detected_at: datetime | None = None  # the event clock when the engine opened it

    @property
    def detected(self) -> datetime:
        return self.detected_at if self.detected_at is not None else self.opened_at


@dataclass(slots=True)
class KindScore:
    faults: int = 0
    observable: int = 0
    detected: int = 0
    incidents: int = 0
    matching: int = 0
    false: int = 0
    duplicates: int = 0
    ttd_s: list[float] = field(default_factory=list)  # from the moment the rule was met
    since_start_s: list[float] = field(default_factory=list)  # from the fault's start

    def add(self, other: KindScore) -> None:
        self.faults += other.faults
        self.observable += other.observable
        self.detected += other.detected
        self.incidents += other.incidents
        self.matching += other.matching
        self.false += other.false
        self.duplicates += other.duplicates
        self.ttd_s.extend(other.ttd_s)
        self.since_start_s.extend(other.since_start_s)

    @property
    def recall(self) -> float | None:
        return self.detected / self.observable if self.observable else None

    @property
    def precision(self) -> float | None:
        return self.matching / self.incidents if self.incidents else None


@dataclass(frozen=True, slots=True)
class ComplaintScore:
    total: int
    found: int
    op_right: int
    incident_right: int
    both_right: int

    @property
    def share(self) -> float:
        return self.both_right / self.total if self.total else 0.0


@dataclass(slots=True)
class Evaluation:
    kinds: dict[str, KindScore]
    overall: KindScore
    after_run: int  # unmatched incidents opened after the run ended (not counted as false)
    complaints: ComplaintScore


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _nth_within(times: Sequence[datetime], n: int, within: timedelta) -> datetime | None:
    """The earliest time at which ``n`` of ``times`` lay within ``within`` of each other."""
    ordered = sorted(times)
    for i in range(len(ordered) - n + 1):
        if ordered[i + n - 1] - ordered[i] <= within:
            return ordered[i + n - 1]
    return None


def rule_met_at(fault: FaultRecord, rule: Rule | None, heartbeat_s: int) -> datetime:
    """When ``fault``, as the ground truth tells it, first satisfied ``rule`` (its ``for``
    included): the earliest moment any detector could open the incident.

    Device faults show in the state at their start. A network loss shows at once (the
    terminal's last will); a hung application when the rule's heartbeat window has passed
    since its last message. Counts and complaint clusters are met at the N-th piece of
    evidence within the window (the truth's ``evidence_at``). A fault that never gave its
    rule enough (or a kind with no rule) counts from its start.
    """
    if rule is None:
        return fault.start
    met: list[datetime] = []
    for clause in rule.clauses:
        if isinstance(clause, StateClause):
            met.append(fault.start)
        elif isinstance(clause, AbsenceClause):
            if fault.mode == "hang":
                since = fault.last_message or fault.start
                met.append(since + timedelta(seconds=clause.missed_heartbeats * heartbeat_s))
            else:
                met.append(fault.start)
        elif isinstance(clause, CountClause | ComplaintClause) and fault.evidence_at:
            nth = _nth_within(fault.evidence_at, clause.at_least, clause.within)
            if nth is not None:
                met.append(nth)
    return (min(met) if met else fault.start) + rule.for_


def match_incidents(
    run: RunRecord,
    faults: Sequence[FaultRecord],
    incidents: Iterable[Incident],
    tolerance: timedelta,
    rules: RuleSet | None = None,
) -> tuple[dict[str, KindScore], int]:
    """Per-kind scores of ``incidents`` (group parents already left out) against ``faults``;
    times to detect count from :func:`rule_met_at` under ``rules`` (fault starts if None)."""
    kinds = {k: KindScore() for k in INCIDENT_KINDS}
    by_key: dict[tuple[str, str], list[FaultRecord]] = {}
    for f in faults:
        by_key.setdefault((f.tid, f.kind), []).append(f)
        kinds.setdefault(f.kind, KindScore()).faults += 1
    first: dict[str, datetime] = {}
    after_run = 0
    for inc in sorted(incidents, key=lambda i: (i.opened_at, i.id)):
        score = kinds.setdefault(inc.kind, KindScore())
        window = [
            f
            for f in by_key.get((inc.tid, inc.kind), ())
            if f.start - CLOCK_SLACK <= inc.opened_at <= f.end + tolerance
        ]
        if not window:
            if inc.opened_at >= run.end:
                after_run += 1
                continue
            score.incidents += 1
            score.false += 1
            continue
        score.incidents += 1
        score.matching += 1
        fresh = [f for f in window if f.fault_id not in first]
        if fresh:
            fault = min(fresh, key=lambda f: f.start)
            first[fault.fault_id] = inc.detected
        else:
            score.duplicates += 1
    for f in faults:
        score = kinds[f.kind]
        detected = first.get(f.fault_id)
        if f.observable or detected is not None:
            score.observable += 1
        if detected is not None:
            score.detected += 1
            rule = rules.by_kind(f.kind) if rules is not None else None
            met = rule_met_at(f, rule, run.heartbeat_s)
            score.ttd_s.append(max(0.0, (detected - met).total_seconds()))
            score.since_start_s.append(max(0.0, (detected - f.start).total_seconds()))
    return kinds, after_run


def score_complaints(
    truth: Sequence[ComplaintRecord],
    stored: dict[str, tuple[str | None, int | None]],
    incidents_by_id: dict[int, Incident],
) -> ComplaintScore:
    """``stored``: ref -> (matched_op_id, incident_id) as termwatch recorded them."""
    found = op_right = incident_right = both = 0
    for c in truth:
        if c.ref not in stored:
            continue
        found += 1
        op_id, incident_id = stored[c.ref]
        op_ok = op_id == c.op_id
        if c.true_cause_kind is None:
            inc_ok = incident_id is None
        else:
            inc = incidents_by_id.get(incident_id) if incident_id is not None else None
            inc_ok = (
                inc is not None
                and inc.kind == c.true_cause_kind
                and (inc.tid == c.tid or inc.is_group)
            )
        op_right += op_ok
        incident_right += inc_ok
        both += op_ok and inc_ok
    return ComplaintScore(len(truth), found, op_right, incident_right, both)


def evaluate(
    conn: psycopg.Connection[Any],
    truth_path: Path,
    tolerance: timedelta,
    rules: RuleSet | None = None,
) -> Evaluation:
    """Read the truth file and termwatch's tables; raises TruthError for a bad file.

    ``rules`` are the rules termwatch ran (times to detect count from when a fault met its
    rule); None counts them from the faults' starts.
    """
    run, faults, complaints = read_truth(truth_path)
    tids = run.tids()
    rows = conn.execute(
        "SELECT id, tid, kind, opened_at, is_group, parent_id, detected_at FROM incidents"
        " WHERE tid = ANY(%s) AND opened_at >= %s AND opened_at < %s"
        " AND (severity <> 'minor' OR kind = ANY(%s))",  # minor kinds the simulator injects
        (tids, run.start - CLOCK_SLACK, run.end + tolerance, list(INCIDENT_KINDS)),
    ).fetchall()
    incidents = [
        Incident(
            r["id"],
            r["tid"],
            r["kind"],
            r["opened_at"],
            r["is_group"],
            r["parent_id"],
            r["detected_at"],
        )
        for r in rows
    ]
    kinds, after_run = match_incidents(
        run, faults, (i for i in incidents if not i.is_group), tolerance, rules
    )
    overall = KindScore()
    for score in kinds.values():
        overall.add(score)
    stored_rows = conn.execute(
        "SELECT ref, matched_op_id, incident_id FROM complaints WHERE ref = ANY(%s)",
        ([c.ref for c in complaints],),
    ).fetchall()
    stored = {r["ref"]: (r["matched_op_id"], r["incident_id"]) for r in stored_rows}
    linked = {i for _, i in stored.values() if i is not None}
    by_id = {i.id: i for i in incidents}
    missing = sorted(linked - by_id.keys())
    if missing:
        for r in conn.execute(
            "SELECT id, tid, kind, opened_at, is_group, parent_id FROM incidents"
            " WHERE id = ANY(%s)",
            (missing,),
        ).fetchall():
            by_id[r["id"]] = Incident(
                r["id"], r["tid"], r["kind"], r["opened_at"], r["is_group"], r["parent_id"]
            )
    return Evaluation(kinds, overall, after_run, score_complaints(complaints, stored, by_id))


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(ev: Evaluation) -> list[str]:
    """The printed report; the last line is the one scripts read."""
    head = (
        f"{'kind':<22}{'faults':>7}{'seen':>6}{'detected':>9}{'recall':>8}{'incidents':>10}"
        f"{'false':>6}{'dup':>5}{'precision':>10}{'ttd_p50':>9}{'ttd_p95':>9}"
        f"{'start_p50':>10}{'start_p95':>10}"
    )
    lines = [head]
    for kind, s in [*sorted(ev.kinds.items()), ("overall", ev.overall)]:
        lines.append(
            f"{kind:<22}{s.faults:>7}{s.observable:>6}{s.detected:>9}{_num(s.recall):>8}{s.incidents:>10}"
            f"{s.false:>6}{s.duplicates:>5}{_num(s.precision):>10}"
            f"{_num(percentile(s.ttd_s, 50), 0):>9}{_num(percentile(s.ttd_s, 95), 0):>9}"
            f"{_num(percentile(s.since_start_s, 50), 0):>10}"
            f"{_num(percentile(s.since_start_s, 95), 0):>10}"
        )
    lines.append(
        "ttd: seconds of event time from the moment a fault met its rule (for included) until"
        " termwatch opened its incident; start: from the fault's start"
    )
    c = ev.complaints
    lines.append(
        f"complaints: {c.total} in the truth, {c.found} found in termwatch;"
        f" right operation {c.op_right},"
        f" right incident {c.incident_right}, both {c.both_right}"
    )
    if ev.after_run:
        lines.append(
            f"{ev.after_run} incidents opened after the run ended matched no fault (not counted)"
        )
    if ev.overall.incidents == 0:
        lines.append(
            "nothing was detected: termwatch opened no incident for this run's terminals and time"
        )
    o = ev.overall
    recall = o.recall if o.recall is not None else 0.0
    lines.append(
        f"evaluate: precision {_num(o.precision)} recall {recall:.3f}"
        f" ttd_p95 {_num(percentile(o.ttd_s, 95), 0)} s complaints_matched {c.share:.3f}"
    )
    return lines


def evaluate_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        tolerance = timedelta(milliseconds=parse_duration(args.tolerance))
    except ValueError as exc:
        print(f"evaluate: --tolerance: {exc}", file=sys.stderr)
        return 2
    try:
        rules = load_rules(settings.rules_file)
    except RuleFileError as exc:
        print(f"evaluate: bad rule file: {exc}", file=sys.stderr)
        return 2
    dsn = settings.require_database()
    try:
        with connect(dsn, autocommit=True) as conn:
            result = evaluate(conn, Path(args.truth), tolerance, rules)
    except TruthError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    for line in report(result):
        print(line)
    return 0
