"""The rule model: what a parsed and checked rule file is.

A rule opens one incident kind. Its conditions (``when``) are alternatives: the rule holds
while any of them holds. Four forms exist:

* :class:`StateClause`: a device field has one of some values (held for the rule's ``for``);
* :class:`CountClause`: at least N matching events or failed operation steps within a window,
  counting only those after the latest reset;
* :class:`AbsenceClause`: no telemetry for N x the terminal's heartbeat interval, or the
  availability topic says ``offline``;
* :class:`ComplaintClause`: K complaints about one terminal that no device incident explains.

Instances are immutable; :mod:`rules.config` builds them from YAML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

SEVERITIES: Final = ("critical", "major", "minor")
FAILED_RESULTS: Final = frozenset({"failed", "timeout"})


@dataclass(frozen=True, slots=True)
class StateClause:
    device: str
    field: str
    values: frozenset[str]

    def describe(self) -> str:
        return f"{self.device}.{self.field} in {sorted(self.values)}"


@dataclass(frozen=True, slots=True)
class EventMatch:
    """An event by name, optionally by device and by payload values."""

    name: str
    device: str | None = None
    payload: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def matches(self, name: str, device: str, payload: Mapping[str, Any]) -> bool:
        if name != self.name or (self.device is not None and device != self.device):
            return False
        for key, allowed in self.payload.items():
            value = payload.get(key)
            if not isinstance(value, str) or value not in allowed:
                return False
        return True


@dataclass(frozen=True, slots=True)
class StepFact:
    """One step of an operation as the rules see it."""

    step: str
    result: str
    error: str | None


@dataclass(frozen=True, slots=True)
class OpMatch:
    """An operation with a step matching ``step``/``results``/``errors`` (any step if no name).

    ``money_at_risk`` true asks, in addition, for cash accepted and payment not sent.
    """

    step: str | None = None
    results: frozenset[str] = FAILED_RESULTS
    errors: frozenset[str] | None = None
    errors_except: frozenset[str] = frozenset()
    money_at_risk: bool | None = None

    def matches(self, steps: Iterable[StepFact], money_at_risk_minor: int) -> bool:
        if self.money_at_risk is not None and (money_at_risk_minor > 0) != self.money_at_risk:
            return False
        for step in steps:
            if self.step is not None and step.step != self.step:
                continue
            if step.result not in self.results:
                continue
            if self.errors is not None and (step.error is None or step.error not in self.errors):
                continue
            if step.error is not None and step.error in self.errors_except:
                continue
            return True
        return False


@dataclass(frozen=True, slots=True)
class CountClause:
    source: str  # 'events' | 'operations'
    match: EventMatch | OpMatch
    at_least: int
    within: timedelta
    reset: EventMatch | OpMatch | None = None
    #: Once proven, hold until a reset item arrives (a quiet window alone does not clear).
    until_reset: bool = False

    def describe(self) -> str:
        what = self.match.name if isinstance(self.match, EventMatch) else "failed operations"
        return f"{self.at_least} x {what} within {int(self.within.total_seconds())} s"


@dataclass(frozen=True, slots=True)
class AbsenceClause:
    missed_heartbeats: int
    availability: bool = True


@dataclass(frozen=True, slots=True)
class ComplaintClause:
    at_least: int
    within: timedelta
    quiet_for: timedelta
    categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class ClockClause:
    """The terminal's clock is off the fleet's by more than ``off_by_more_than``."""

    off_by_more_than: timedelta


Clause = StateClause | CountClause | AbsenceClause | ComplaintClause | ClockClause


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    kind: str
    severity: str
    title: str
    clauses: tuple[Clause, ...]
    for_: timedelta
    clear_for: timedelta
    reopen_window: timedelta
    inhibit_when_offline: bool
    affects: tuple[OpMatch, ...]
    storm: bool
    line: int = 0

    @property
    def state_clauses(self) -> tuple[StateClause, ...]:
        return tuple(c for c in self.clauses if isinstance(c, StateClause))

    @property
    def count_clauses(self) -> tuple[CountClause, ...]:
        return tuple(c for c in self.clauses if isinstance(c, CountClause))

    @property
    def absence(self) -> AbsenceClause | None:
        found = [c for c in self.clauses if isinstance(c, AbsenceClause)]
        return found[0] if found else None

    @property
    def complaint_clause(self) -> ComplaintClause | None:
        found = [c for c in self.clauses if isinstance(c, ComplaintClause)]
        return found[0] if found else None

    @property
    def clock_clause(self) -> ClockClause | None:
        found = [c for c in self.clauses if isinstance(c, ClockClause)]
        return found[0] if found else None

    def affected_by(self, steps: Iterable[StepFact], money_at_risk_minor: int) -> bool:
        """Whether an operation with these steps counts as affected by this rule's incident."""
        facts = tuple(steps)
        return any(m.matches(facts, money_at_risk_minor) for m in self.affects)


@dataclass(frozen=True, slots=True)
class StormSettings:
    """Many terminals of one region opening one kind within ``window`` form a group."""

    window: timedelta = timedelta(minutes=5)
    min_terminals: int = 5


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    storm: StormSettings = StormSettings()
    source: str = "<rules>"

    def by_kind(self, kind: str) -> Rule | None:
        for rule in self.rules:
            if rule.kind == kind:
                return rule
        return None

    def by_name(self, name: str) -> Rule | None:
        for rule in self.rules:
            if rule.name == name:
                return rule
        return None

    @property
    def state_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.state_clauses)

    @property
    def offline_rule(self) -> Rule | None:
        for rule in self.rules:
            if rule.absence is not None:
                return rule
        return None

    @property
    def clock_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.clock_clause is not None)

    @property
    def complaint_rule(self) -> Rule | None:
        for rule in self.rules:
            if rule.complaint_clause is not None:
                return rule
        return None

    @property
    def state_fields(self) -> frozenset[tuple[str, str]]:
        return frozenset((c.device, c.field) for r in self.rules for c in r.state_clauses)
