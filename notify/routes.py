"""Alert routes: which targets hear about which incidents, and when.

The routes file (``TERMWATCH_ROUTES_FILE``, YAML; ``examples/routes.yaml`` documents every
key) names the targets once, then gives a ``default`` route and one route per service group
(the registry's ``service_group``). A group route takes every key it does not set from the
default route. The file is read strictly (unknown or duplicate keys, wrong types: refused
with the line and the reason), then checked for meaning (referenced targets exist, Apprise
understands each URL, time zones and quiet hours are valid). Every problem found is reported
at once by :class:`RoutesError`.

With no routes file, or a route without targets, messages go to the pseudo-target ``log``
(``TERMWATCH_NOTIFY_LOG`` if set, else the process log): incidents are logged, not sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import apprise
import yaml

from notify.yamlnodes import Invalid, Problem, Reader, is_null
from termwatch.settings import SettingsError

SEVERITIES: Final = ("minor", "major", "critical")  # in rising order
LOG_TARGET: Final = "log"
#: Alertmanager resolves an alert not sent again within its resolve_timeout (5m by default).
MAX_RESEND: Final = timedelta(minutes=4)
_T = TypeVar("_T")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_ROUTE_KEYS: Final = (
    "targets",
    "min_severity",
    "group_wait",
    "repeat_interval",
    "escalate",
    "quiet_hours",
    "timezone",
)


class RoutesError(SettingsError):
    """The routes file is unreadable or wrong; ``problems`` has the line and reason of each.

    A :class:`~termwatch.settings.SettingsError`, so a bad file stops ``termwatch serve``
    at start with a configuration error listing every problem.
    """

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def severity_rank(severity: str) -> int:
    """0 for minor, 1 for major, 2 for critical; unknown severities rank as critical."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


@dataclass(frozen=True, slots=True)
class Target:
    """Where a message goes. ``kind`` is ``apprise``, ``webhook``, ``alertmanager`` or
    ``log``. ``resend`` (alertmanager only): how often open incidents are pushed again."""

    name: str
    kind: str
    url: str = field(default="", repr=False)  # may hold a token: never logged or stored
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout: float = 10.0
    resend: timedelta = timedelta(minutes=1)

    @property
    def type_label(self) -> str:
        """The metric label: ``webhook``, ``log`` or the Apprise scheme (``mailto``, ``tgram``)."""
        if self.kind == "apprise":
            return urlsplit(self.url).scheme.lower() or "apprise"
        return self.kind


LOG = Target(name=LOG_TARGET, kind="log")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window, local to the route's time zone, in which ``major`` does not page."""

    start: time
    end: time

    def until(self, now: datetime, tz: ZoneInfo) -> datetime | None:
        """The end of the quiet window containing ``now``, or None when ``now`` is outside it."""
        local = now.astimezone(tz)
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= t < self.end
            end_day = local.date()
        else:  # the window runs past midnight
            inside = t >= self.start or t < self.end
            end_day = local.date() + timedelta(days=1) if t >= self.start else local.date()
        if not inside:
            return None
        return datetime.combine(end_day, self.end, tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Escalation:
    after: timedelta
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """How one service group (or ``default``) is paged."""

    name: str
    targets: tuple[str, ...] = ()
    min_severity: str = "major"
    group_wait: timedelta = timedelta(seconds=30)
    repeat_interval: timedelta = timedelta(hours=1)  # zero: no repeats
    escalate: Escalation | None = None
    quiet_hours: QuietHours | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def pages(self, severity: str) -> bool:
        """Whether an incident of ``severity`` is at or above this route's minimum."""
        return severity_rank(severity) >= severity_rank(self.min_severity)


@dataclass(frozen=True, slots=True)
class Retry:
    """Delivery retries: ``attempts`` in all, waiting ``backoff`` doubled each time."""

    attempts: int = 10
    backoff: timedelta = timedelta(seconds=10)
    max_backoff: timedelta = timedelta(minutes=10)

    def delay(self, attempts_made: int) -> timedelta:
        """The wait before the next attempt after ``attempts_made`` failed ones (>= 1)."""
        seconds = self.backoff.total_seconds() * 2 ** max(attempts_made - 1, 0)
        return timedelta(seconds=min(seconds, self.max_backoff.total_seconds()))


@dataclass(frozen=True, slots=True)
class Routes:
    """The whole routing configuration, immutable once loaded."""

    source: str = "(no routes file)"
    targets: dict[str, Target] = field(default_factory=dict)
    default: Route = field(default_factory=lambda: Route(name="default"))
    groups: dict[str, Route] = field(default_factory=dict)
    retry: Retry = field(default_factory=Retry)

    def for_group(self, service_group: str | None) -> Route:
        """The route of a service group: its own, else the default."""
        if service_group and service_group in self.groups:
            return self.groups[service_group]
        return self.default

    def route(self, name: str) -> Route:
        """A route by name; a route no longer in the file falls back to the default."""
        return self.groups.get(name, self.default)

    def targets_for(self, route: Route, audience: str) -> list[Target]:
        """The targets of ``route`` for ``audience`` (primary or escalation); ``[LOG]`` if none."""
        if audience == "escalation":
            names = route.escalate.targets if route.escalate else ()
        else:
            names = route.targets
        found = [self.targets[n] for n in names if n in self.targets]
        return found or [LOG]

    def target(self, name: str) -> Target | None:
        """A target by name (``log`` always exists)."""
        return LOG if name == LOG_TARGET else self.targets.get(name)


def load_routes(path: Path | None) -> Routes:
    """Read and check the routes file; no file gives routes that log every message.

    Raises :class:`RoutesError` listing every problem with its line.
    """
    if path is None:
        return Routes()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RoutesError(str(path), [Problem(0, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutesError(str(path), [Problem(0, f"cannot read: {exc}")]) from None
    return parse_routes(text, str(path))


def parse_routes(text: str, source: str = "routes") -> Routes:
    """Parse routes from YAML text; raises :class:`RoutesError` listing every problem."""
    reader = Reader()
    root = reader.compose(text)
    if root is None:
        raise RoutesError(source, reader.problems)
    routes = _Parser(reader, source).parse(root)
    if reader.problems or routes is None:
        raise RoutesError(source, sorted(reader.problems, key=lambda p: p.line))
    return routes


@dataclass(slots=True)
class _Parser:
    reader: Reader
    source: str
    #: (route name, target name, node) of every reference, checked once all targets are known.
    refs: list[tuple[str, str, yaml.Node]] = field(default_factory=list)

    def parse(self, root: yaml.Node) -> Routes | None:
        r = self.reader
        try:
            top = r.mapping(
                root,
                "routes file",
                optional=("version", "timezone", "retry", "targets", "default", "groups"),
            )
        except Invalid:
            return None
        if "version" in top:
            self._guard(lambda: r.integer(top["version"][1], "version", 1, 1), 1)
        tz = ZoneInfo("UTC")
        if "timezone" in top:
            tz = self._guard(lambda: self._zone(top["timezone"][1]), tz)
        retry = Retry()
        if "retry" in top:
            retry = self._guard(lambda: self._retry(top["retry"][1]), retry)
        targets: dict[str, Target] = {}
        if "targets" in top:
            targets = self._guard(lambda: self._targets(top["targets"][1]), targets)
        default = Route(name="default", timezone=tz)
        if "default" in top:
            default = self._guard(lambda: self._route(top["default"][1], default), default)
        groups: dict[str, Route] = {}
        if "groups" in top:
            groups = self._guard(lambda: self._groups(top["groups"][1], default), groups)
        for route_name, target_name, node in self.refs:
            if target_name not in targets:
                known = ", ".join(sorted(targets)) or "none defined"
                r.fail(node, f"{route_name}: unknown target {target_name!r} (known: {known})")
        return Routes(
            source=self.source, targets=targets, default=default, groups=groups, retry=retry
        )

    def _guard(self, read: Callable[[], _T], fallback: _T) -> _T:
        """Run ``read``; on :class:`Invalid` (already recorded) return ``fallback``."""
        try:
            return read()
        except Invalid:
            return fallback

    def _zone(self, node: yaml.Node) -> ZoneInfo:
        name = self.reader.text(node, "timezone")
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.reader.fail(node, f"timezone: unknown time zone {name!r}") from None

    def _retry(self, node: yaml.Node) -> Retry:
        r = self.reader
        keys = r.mapping(node, "retry", optional=("attempts", "backoff", "max_backoff"))
        out = Retry()
        if "attempts" in keys:
            out = replace(out, attempts=r.integer(keys["attempts"][1], "retry.attempts", 1, 100))
        if "backoff" in keys:
            out = replace(out, backoff=r.duration(keys["backoff"][1], "retry.backoff", minimum=1))
        if "max_backoff" in keys:
            out = replace(
                out,
                max_backoff=r.duration(keys["max_backoff"][1], "retry.max_backoff", minimum=1),
            )
        if out.max_backoff < out.backoff:
            raise r.fail(node, "retry.max_backoff must not be shorter than retry.backoff")
        return out

    def _targets(self, node: yaml.Node) -> dict[str, Target]:
        r = self.reader
        out: dict[str, Target] = {}
        for name, (key_node, value) in r.mapping(node, "targets", any_keys=True).items():
            if not _NAME.fullmatch(name) or name == LOG_TARGET:
                r.fail(
                    key_node,
                    f"targets: {name!r} is not a usable name (letters, digits, _.-;"
                    f" {LOG_TARGET!r} is reserved)",
                )
                continue
            try:
                out[name] = self._target(name, value)
            except Invalid:
                continue
        return out

    def _target(self, name: str, node: yaml.Node) -> Target:
        r = self.reader
        what = f"targets.{name}"
        keys = r.mapping(
            node,
            what,
            optional=("apprise", "webhook", "alertmanager", "headers", "timeout", "resend"),
        )
        timeout = 10.0
        if "timeout" in keys:
            timeout = r.duration(keys["timeout"][1], f"{what}.timeout", minimum=1).total_seconds()
        if sum(k in keys for k in ("apprise", "webhook", "alertmanager")) != 1:
            raise r.fail(
                node, f"{what}: give exactly one of 'apprise', 'webhook' or 'alertmanager'"
            )
        if "resend" in keys and "alertmanager" not in keys:
            raise r.fail(keys["resend"][0], f"{what}: resend is for alertmanager targets")
        if "alertmanager" in keys:
            return self._alertmanager(name, keys, timeout)
        if "apprise" in keys:
            if "headers" in keys:
                raise r.fail(keys["headers"][0], f"{what}: headers are for webhook targets")
            url_node = keys["apprise"][1]
            url = r.text(url_node, f"{what}.apprise")
            if apprise.Apprise.instantiate(url) is None:
                raise r.fail(url_node, f"{what}.apprise: Apprise does not understand this URL")
            return Target(name=name, kind="apprise", url=url, timeout=timeout)
        url_node = keys["webhook"][1]
        url = r.text(url_node, f"{what}.webhook")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise r.fail(url_node, f"{what}.webhook: expected an http:// or https:// URL")
        headers: dict[str, str] = {}
        if "headers" in keys:
            headers = r.string_map(keys["headers"][1], f"{what}.headers")
        return Target(
            name=name, kind="webhook", url=url, headers=tuple(headers.items()), timeout=timeout
        )

    def _alertmanager(
        self, name: str, keys: dict[str, tuple[yaml.Node, yaml.Node]], timeout: float
    ) -> Target:
        r = self.reader
        what = f"targets.{name}"
        url_node = keys["alertmanager"][1]
        url = r.text(url_node, f"{what}.alertmanager")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise r.fail(
                url_node, f"{what}.alertmanager: expected the http:// or https:// base URL"
            )
        resend = timedelta(minutes=1)
        if "resend" in keys:
            resend = r.duration(keys["resend"][1], f"{what}.resend", minimum=10)
            if resend > MAX_RESEND:
                raise r.fail(
                    keys["resend"][1],
                    f"{what}.resend: at most {int(MAX_RESEND.total_seconds() // 60)}m, shorter"
                    " than Alertmanager's resolve_timeout (5m by default)",
                )
        headers: dict[str, str] = {}
        if "headers" in keys:
            headers = r.string_map(keys["headers"][1], f"{what}.headers")
        return Target(
            name=name,
            kind="alertmanager",
            url=url,
            headers=tuple(headers.items()),
            timeout=timeout,
            resend=resend,
        )

    def _groups(self, node: yaml.Node, default: Route) -> dict[str, Route]:
        r = self.reader
        out: dict[str, Route] = {}
        for name, (key_node, value) in r.mapping(node, "groups", any_keys=True).items():
            if name == "default":
                r.fail(key_node, "groups: 'default' is the top-level default route")
                continue
            try:
                out[name] = self._route(value, replace(default, name=name))
            except Invalid:
                continue
        return out

    def _route(self, node: yaml.Node, base: Route) -> Route:
        """A route: the keys given in ``node`` over those of ``base``."""
        r = self.reader
        what = "default" if base.name == "default" else f"groups.{base.name}"
        keys = r.mapping(node, what, optional=_ROUTE_KEYS)
        route = base
        if "targets" in keys:
            route = replace(route, targets=self._names(keys["targets"][1], f"{what}.targets"))
        if "min_severity" in keys:
            sev = r.choice(keys["min_severity"][1], f"{what}.min_severity", SEVERITIES)
            route = replace(route, min_severity=sev)
        if "group_wait" in keys:
            route = replace(
                route, group_wait=r.duration(keys["group_wait"][1], f"{what}.group_wait")
            )
        if "repeat_interval" in keys:
            every = r.duration(keys["repeat_interval"][1], f"{what}.repeat_interval")
            if timedelta(0) < every < timedelta(minutes=1):
                raise r.fail(
                    keys["repeat_interval"][1],
                    f"{what}.repeat_interval must be 0 (off) or at least 1m",
                )
            route = replace(route, repeat_interval=every)
        if "timezone" in keys:
            route = replace(route, timezone=self._zone(keys["timezone"][1]))
        if "escalate" in keys:
            route = replace(route, escalate=self._escalation(keys["escalate"][1], what))
        if "quiet_hours" in keys:
            route = replace(route, quiet_hours=self._quiet(keys["quiet_hours"][1], what))
        return route

    def _names(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        names: list[str] = []
        for item in self.reader.sequence(node, what):
            name = self.reader.text(item, what)
            if name in names:
                raise self.reader.fail(item, f"{what}: {name!r} is listed twice")
            self.refs.append((what, name, item))
            names.append(name)
        return tuple(names)

    def _escalation(self, node: yaml.Node, what: str) -> Escalation | None:
        if is_null(node):
            return None
        r = self.reader
        keys = r.mapping(node, f"{what}.escalate", required=("after", "targets"))
        if "after" not in keys or "targets" not in keys:
            raise Invalid("incomplete escalate")
        after = r.duration(keys["after"][1], f"{what}.escalate.after", minimum=1)
        targets = self._names(keys["targets"][1], f"{what}.escalate.targets")
        if not targets:
            raise r.fail(keys["targets"][1], f"{what}.escalate.targets must not be empty")
        return Escalation(after=after, targets=targets)

    def _quiet(self, node: yaml.Node, what: str) -> QuietHours | None:
        if is_null(node):
            return None
        r = self.reader
        keys = r.mapping(node, f"{what}.quiet_hours", required=("start", "end"))
        if "start" not in keys or "end" not in keys:
            raise Invalid("incomplete quiet_hours")
        start = self._clock(keys["start"][1], f"{what}.quiet_hours.start")
        end = self._clock(keys["end"][1], f"{what}.quiet_hours.end")
        if start == end:
            raise r.fail(node, f"{what}.quiet_hours: start and end are the same time")
        return QuietHours(start=start, end=end)

    def _clock(self, node: yaml.Node, what: str) -> time:
        # YAML 1.1 reads an unquoted 22:00 as a base-60 number; the raw text is what counts.
        raw = str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""
        match = _CLOCK.fullmatch(raw)
        if not match:
            raise self.reader.fail(node, f'{what} must be a time of day like "22:00"')
        return time(int(match[1]), int(match[2]))
