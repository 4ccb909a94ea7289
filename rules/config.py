"""Loading rule files: parsed strictly, then checked for meaning.

A rule file is YAML (format in ``docs/rules.md``). Every mistake is reported as
:class:`RuleFileError` with the file, the line and the reason, and the whole file is refused:
a half-loaded rule set would silently miss incidents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rules.model import (
    FAILED_RESULTS,
    SEVERITIES,
    AbsenceClause,
    Clause,
    ClockClause,
    ComplaintClause,
    CountClause,
    EventMatch,
    OpMatch,
    Rule,
    RuleSet,
    StateClause,
    StormSettings,
)
from terminals.contract import COMPLAINT_CATEGORIES, FIELD_VALUES, STEP_RESULTS, STEPS

DEFAULT_FILE: Final = "default_rules.yaml"
_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DURATION_RE: Final = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_BOOL: Final = "tag:yaml.org,2002:bool"


#: Mistakes reported at most for one rule file (the rest are counted).
MAX_PROBLEMS: Final = 20


class RuleFileError(ValueError):
    """A rule file is malformed or meaningless; the message has one ``file:line: reason``
    line for each mistake found (one per rule, up to :data:`MAX_PROBLEMS`)."""


class _Reader:
    """Typed access to YAML nodes that reports the line of every mistake."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: Node, reason: str) -> RuleFileError:
        return RuleFileError(f"{self.source}:{node.start_mark.line + 1}: {reason}")

    def mapping(
        self, node: Node, what: str, *, required: tuple[str, ...] = (), allowed: tuple[str, ...]
    ) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = self.text(key_node, f"a key of {what}")
            if key in out:
                raise self.fail(key_node, f"{what}: duplicate key {key!r}")
            if key not in allowed:
                raise self.fail(
                    key_node, f"{what}: unknown key {key!r} (allowed: {', '.join(allowed)})"
                )
            out[key] = value_node
        for key in required:
            if key not in out:
                raise self.fail(node, f"{what}: missing key {key!r}")
        return out

    def sequence(self, node: Node, what: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def text(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag != _STR or not node.value:
            raise self.fail(node, f"{what} must be a non-empty string")
        return str(node.value)

    def integer(self, node: Node, what: str, lo: int, hi: int) -> int:
        if not isinstance(node, ScalarNode) or node.tag != _INT:
            raise self.fail(node, f"{what} must be an integer")
        value = int(node.value)
        if not lo <= value <= hi:
            raise self.fail(node, f"{what} must be between {lo} and {hi}, got {value}")
        return value

    def boolean(self, node: Node, what: str) -> bool:
        if not isinstance(node, ScalarNode) or node.tag != _BOOL:
            raise self.fail(node, f"{what} must be true or false")
        return str(node.value).lower() in ("true", "yes", "on")

    def duration(
        self, node: Node, what: str, *, lo_s: int = 0, hi_s: int = 7 * 86_400
    ) -> timedelta:
        if isinstance(node, ScalarNode) and node.tag == _INT:
            seconds = int(node.value)
        elif isinstance(node, ScalarNode) and node.tag == _STR:
            match = _DURATION_RE.match(node.value)
            if not node.value or not match:
                raise self.fail(node, f"{what}: bad duration {node.value!r} (e.g. 90s, 5m, 1h30m)")
            h, m, s = (int(g) if g else 0 for g in match.groups())
            seconds = h * 3600 + m * 60 + s
        else:
            raise self.fail(node, f"{what} must be a duration (e.g. 90s, 5m, 1h30m)")
        if not lo_s <= seconds <= hi_s:
            raise self.fail(node, f"{what} must be between {lo_s} s and {hi_s} s, got {seconds} s")
        return timedelta(seconds=seconds)

    def texts(self, node: Node, what: str, allowed: frozenset[str] | None = None) -> frozenset[str]:
        items = self.sequence(node, what) if isinstance(node, SequenceNode) else [node]
        values: set[str] = set()
        for item in items:
            value = self.text(item, f"a value of {what}")
            if allowed is not None and value not in allowed:
                raise self.fail(
                    item, f"{what}: unknown value {value!r} (known: {', '.join(sorted(allowed))})"
                )
            values.add(value)
        if not values:
            raise self.fail(node, f"{what} must not be empty")
        return frozenset(values)


def _state(r: _Reader, node: Node) -> StateClause:
    keys = r.mapping(
        node, "state", required=("device", "field", "in"), allowed=("device", "field", "in")
    )
    device = r.text(keys["device"], "state.device")
    name = r.text(keys["field"], "state.field")
    allowed = FIELD_VALUES.get((device, name))
    if allowed is None:
        known = ", ".join(f"{d}.{f}" for d, f in FIELD_VALUES)
        raise r.fail(keys["field"], f"state: unknown device field {device}.{name} (known: {known})")
    return StateClause(device, name, r.texts(keys["in"], "state.in", allowed))


def _event_match(r: _Reader, node: Node, what: str) -> EventMatch:
    keys = r.mapping(node, what, required=("name",), allowed=("name", "device", "payload"))
    payload: dict[str, frozenset[str]] = {}
    if "payload" in keys:
        for key, value in r.mapping(
            keys["payload"], f"{what}.payload", allowed=tuple(_payload_keys(keys["payload"]))
        ).items():
            payload[key] = r.texts(value, f"{what}.payload.{key}")
    return EventMatch(
        name=r.text(keys["name"], f"{what}.name"),
        device=r.text(keys["device"], f"{what}.device") if "device" in keys else None,
        payload=payload,
    )


def _payload_keys(node: Node) -> list[str]:
    if not isinstance(node, MappingNode):
        return []
    return [str(k.value) for k, _ in node.value if isinstance(k, ScalarNode)]


def _op_match(r: _Reader, node: Node, what: str, *, default_results: frozenset[str]) -> OpMatch:
    keys = r.mapping(node, what, allowed=("step", "result", "error", "error_not", "money_at_risk"))
    if not keys:
        raise r.fail(node, f"{what} must name at least one of step, result, error, money_at_risk")
    return OpMatch(
        step=_step_name(r, keys["step"], f"{what}.step") if "step" in keys else None,
        results=r.texts(keys["result"], f"{what}.result", STEP_RESULTS)
        if "result" in keys
        else default_results,
        errors=r.texts(keys["error"], f"{what}.error") if "error" in keys else None,
        errors_except=r.texts(keys["error_not"], f"{what}.error_not")
        if "error_not" in keys
        else frozenset(),
        money_at_risk=r.boolean(keys["money_at_risk"], f"{what}.money_at_risk")
        if "money_at_risk" in keys
        else None,
    )


def _step_name(r: _Reader, node: Node, what: str) -> str:
    name = r.text(node, what)
    if name not in STEPS:
        raise r.fail(node, f"{what}: unknown step {name!r} (known: {', '.join(sorted(STEPS))})")
    return name


def _count(r: _Reader, node: Node) -> CountClause:
    keys = r.mapping(
        node,
        "count",
        required=("at_least", "within"),
        allowed=("events", "operations", "at_least", "within", "reset", "until_reset"),
    )
    if ("events" in keys) == ("operations" in keys):
        raise r.fail(node, "count: give exactly one of events or operations")
    reset: EventMatch | OpMatch | None = None
    if "events" in keys:
        source = "events"
        match: EventMatch | OpMatch = _event_match(r, keys["events"], "count.events")
        if "reset" in keys:
            reset = _event_match(r, keys["reset"], "count.reset")
    else:
        source = "operations"
        match = _op_match(r, keys["operations"], "count.operations", default_results=FAILED_RESULTS)
        if "reset" in keys:
            reset = _op_match(
                r, keys["reset"], "count.reset", default_results=frozenset({"success"})
            )
    until_reset = "until_reset" in keys and r.boolean(keys["until_reset"], "count.until_reset")
    if until_reset and reset is None:
        raise r.fail(keys["until_reset"], "count.until_reset needs a reset")
    return CountClause(
        until_reset=until_reset,
        source=source,
        match=match,
        at_least=r.integer(keys["at_least"], "count.at_least", 1, 10_000),
        within=r.duration(keys["within"], "count.within", lo_s=1),
        reset=reset,
    )


def _absence(r: _Reader, node: Node) -> AbsenceClause:
    keys = r.mapping(
        node,
        "absence",
        required=("missed_heartbeats",),
        allowed=("missed_heartbeats", "availability"),
    )
    return AbsenceClause(
        missed_heartbeats=r.integer(keys["missed_heartbeats"], "absence.missed_heartbeats", 1, 100),
        availability=r.boolean(keys["availability"], "absence.availability")
        if "availability" in keys
        else True,
    )


def _complaints(r: _Reader, node: Node) -> ComplaintClause:
    keys = r.mapping(
        node,
        "complaints",
        required=("at_least", "within"),
        allowed=("at_least", "within", "quiet_for", "categories"),
    )
    within = r.duration(keys["within"], "complaints.within", lo_s=60)
    return ComplaintClause(
        at_least=r.integer(keys["at_least"], "complaints.at_least", 1, 1000),
        within=within,
        quiet_for=r.duration(keys["quiet_for"], "complaints.quiet_for", lo_s=60)
        if "quiet_for" in keys
        else within,
        categories=r.texts(
            keys["categories"], "complaints.categories", frozenset(COMPLAINT_CATEGORIES)
        )
        if "categories" in keys
        else frozenset(COMPLAINT_CATEGORIES),
    )


def _clock(r: _Reader, node: Node) -> ClockClause:
    keys = r.mapping(node, "clock", required=("off_by_more_than",), allowed=("off_by_more_than",))
    return ClockClause(
        off_by_more_than=r.duration(keys["off_by_more_than"], "clock.off_by_more_than", lo_s=1)
    )


_FORMS: dict[str, Callable[[_Reader, Node], Clause]] = {
    "state": _state,
    "count": _count,
    "absence": _absence,
    "complaints": _complaints,
    "clock": _clock,
}
_RULE_KEYS = (
    "name",
    "kind",
    "severity",
    "title",
    "when",
    "for",
    "clear_for",
    "reopen_window",
    "inhibit_when_offline",
    "affects",
    "storm",
    "enabled",
)


def _clause(r: _Reader, node: Node) -> Clause:
    keys = r.mapping(node, "a condition", allowed=tuple(_FORMS))
    if len(keys) != 1:
        raise r.fail(node, f"a condition has exactly one form: {', '.join(_FORMS)}")
    ((form, body),) = keys.items()
    return _FORMS[form](r, body)


def _rule(r: _Reader, node: Node, defaults: dict[str, timedelta]) -> tuple[Rule, bool]:
    keys = r.mapping(
        node, "a rule", required=("name", "severity", "title", "when"), allowed=_RULE_KEYS
    )
    name = r.text(keys["name"], "name")
    if not _NAME_RE.match(name):
        raise r.fail(keys["name"], f"name {name!r}: lower-case letters, digits and _ only")
    kind = r.text(keys["kind"], "kind") if "kind" in keys else name
    if not _NAME_RE.match(kind):
        raise r.fail(keys["kind"], f"kind {kind!r}: lower-case letters, digits and _ only")
    severity = r.text(keys["severity"], "severity")
    if severity not in SEVERITIES:
        raise r.fail(keys["severity"], f"severity must be one of {', '.join(SEVERITIES)}")
    clauses = tuple(_clause(r, c) for c in r.sequence(keys["when"], "when"))
    if not clauses:
        raise r.fail(keys["when"], "when: at least one condition is needed")
    special = [c for c in clauses if isinstance(c, AbsenceClause | ComplaintClause | ClockClause)]
    if special and len(clauses) > 1:
        raise r.fail(
            keys["when"], "absence, complaints and clock conditions must stand alone in a rule"
        )
    has_state = any(isinstance(c, StateClause) for c in clauses)
    if "for" in keys and not has_state:
        raise r.fail(keys["for"], "for applies to state conditions only")
    affects = tuple(
        _op_match(r, a, "affects", default_results=FAILED_RESULTS)
        for a in (r.sequence(keys["affects"], "affects") if "affects" in keys else [])
    )
    rule = Rule(
        name=name,
        kind=kind,
        severity=severity,
        title=r.text(keys["title"], "title"),
        clauses=clauses,
        for_=r.duration(keys["for"], "for") if "for" in keys else timedelta(0),
        clear_for=r.duration(keys["clear_for"], "clear_for")
        if "clear_for" in keys
        else defaults["clear_for"],
        reopen_window=r.duration(keys["reopen_window"], "reopen_window")
        if "reopen_window" in keys
        else defaults["reopen_window"],
        inhibit_when_offline=r.boolean(keys["inhibit_when_offline"], "inhibit_when_offline")
        if "inhibit_when_offline" in keys
        else not special,
        affects=affects,
        storm=r.boolean(keys["storm"], "storm") if "storm" in keys else severity != "minor",
        line=node.start_mark.line + 1,
    )
    enabled = r.boolean(keys["enabled"], "enabled") if "enabled" in keys else True
    return rule, enabled


def parse_rules(text: str, source: str = "<rules>", *, base: RuleSet | None = None) -> RuleSet:
    """Parse and check a rule file's text.

    ``base`` is the rule set that ``include_defaults: true`` extends (rules of the same name
    are replaced; ``enabled: false`` removes one). Raises :class:`RuleFileError`.
    """
    r = _Reader(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise RuleFileError(f"{source}:{line}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise RuleFileError(f"{source}: not valid YAML: {exc}") from None
    if root is None:
        raise RuleFileError(f"{source}:1: the file is empty")
    top = r.mapping(
        root,
        "the rule file",
        required=("version", "rules"),
        allowed=("version", "include_defaults", "defaults", "storm", "rules"),
    )
    r.integer(top["version"], "version", 1, 1)
    defaults = {"clear_for": timedelta(minutes=2), "reopen_window": timedelta(minutes=10)}
    if "defaults" in top:
        for key, value in r.mapping(top["defaults"], "defaults", allowed=tuple(defaults)).items():
            defaults[key] = r.duration(value, f"defaults.{key}")
    include = "include_defaults" in top and r.boolean(top["include_defaults"], "include_defaults")
    storm = base.storm if include and base else StormSettings()
    if "storm" in top:
        keys = r.mapping(top["storm"], "storm", allowed=("window", "min_terminals"))
        storm = StormSettings(
            window=r.duration(keys["window"], "storm.window", lo_s=1)
            if "window" in keys
            else storm.window,
            min_terminals=r.integer(keys["min_terminals"], "storm.min_terminals", 2, 100_000)
            if "min_terminals" in keys
            else storm.min_terminals,
        )
    rules: dict[str, Rule] = {rule.name: rule for rule in base.rules} if include and base else {}
    seen: set[str] = set()
    problems: list[str] = []  # every rule is checked, so that one run lists every mistake
    for node in r.sequence(top["rules"], "rules"):
        try:
            rule, enabled = _rule(r, node, defaults)
            if rule.name in seen:
                raise r.fail(node, f"rule {rule.name!r} is defined twice")
        except RuleFileError as exc:
            problems.append(str(exc))
            continue
        seen.add(rule.name)
        if enabled:
            rules[rule.name] = rule
        else:
            rules.pop(rule.name, None)
    if not problems:
        _check_meaning(r, root, tuple(rules.values()))
    if len(problems) > MAX_PROBLEMS:
        left = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], f"{source}: {left} more problems not shown"]
    if problems:
        raise RuleFileError("\n".join(problems))
    return RuleSet(rules=tuple(rules.values()), storm=storm, source=source)


def _check_meaning(r: _Reader, root: Node, rules: tuple[Rule, ...]) -> None:
    kinds: dict[str, Rule] = {}
    for rule in rules:
        other = kinds.get(rule.kind)
        if other is not None:
            raise RuleFileError(
                f"{r.source}:{rule.line}: rule {rule.name!r} opens kind {rule.kind!r}, "
                f"already opened by rule {other.name!r} (one rule per kind)"
            )
        kinds[rule.kind] = rule
    if sum(1 for rule in rules if rule.absence is not None) > 1:
        raise r.fail(root, "only one rule may use an absence condition")
    if sum(1 for rule in rules if rule.complaint_clause is not None) > 1:
        raise r.fail(root, "only one rule may use a complaints condition")


def default_rules_text() -> str:
    return (resources.files("rules") / DEFAULT_FILE).read_text(encoding="utf-8")


def default_rules() -> RuleSet:
    """The rule file shipped with termwatch."""
    return parse_rules(default_rules_text(), f"rules/{DEFAULT_FILE}")


def load_rules(path: Path | None) -> RuleSet:
    """The operator's rule file at ``path`` (extending the defaults if it says so), else the
    defaults. Raises :class:`RuleFileError`, also for a file that cannot be read."""
    defaults = default_rules()
    if path is None:
        return defaults
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RuleFileError(f"{path}: not UTF-8 text") from None
    return parse_rules(text, str(path), base=defaults)


def check_rules_file(path: Path | None) -> list[str]:
    """The mistakes of the rule file a long-running command is about to use, one line
    each (empty when it loads), so that it can refuse to start naming them."""
    try:
        load_rules(path)
    except RuleFileError as exc:
        return str(exc).splitlines()
    return []


def with_storm(rules: RuleSet, storm: StormSettings) -> RuleSet:
    """A copy with other storm settings (tests and tools)."""
    return replace(rules, storm=storm)
