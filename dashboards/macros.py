"""Grafana's PostgreSQL macros and template variables, expanded as Grafana expands them.

This lets termwatch run a panel's SQL outside Grafana (``termwatch dashboards check`` and the
tests) and get what Grafana would send to the database. It follows Grafana's SQL data
source: the front end first replaces ``$__interval``, ``$__interval_ms`` and dashboard
variables (``$name``, ``${name}``, ``[[name]]``); the back end then replaces each
``$__macro(args)``, found with the same pattern Grafana uses, whose arguments cannot contain
``)``. An unknown macro raises :class:`MacroError`, as Grafana answers with an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

_MACRO = re.compile(r"\$(__[_a-zA-Z0-9]+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}


class MacroError(ValueError):
    """A macro is unknown or its arguments are malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What Grafana knows when it runs a query: the range, the interval and the variables.

    A variable's value is a string (single value, inserted as is with ``'`` doubled, as
    Grafana does) or a tuple of strings (multi-value: each quoted, joined with commas).
    """

    time_from: datetime
    time_to: datetime
    interval: str = "1h"
    variables: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time_from.tzinfo is None or self.time_to.tzinfo is None:
            raise ValueError("time_from and time_to must be timezone-aware")
        if self.time_to <= self.time_from:
            raise ValueError("time_to must be after time_from")
        parse_duration(self.interval)


def parse_duration(text: str) -> float:
    """Seconds in a Grafana duration such as ``5m``, ``1h`` or ``'1d'``.

    Raises :class:`MacroError` for anything else.
    """
    match = _DURATION.match(text.strip().strip("'\""))
    if not match:
        raise MacroError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h, 1d)")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL that Grafana would send to PostgreSQL for ``sql`` under ``ctx``.

    Raises :class:`MacroError` for an unknown macro, bad macro arguments, or a variable
    that ``ctx`` does not define.
    """
    return _expand_macros(_interpolate(sql, ctx), ctx)


def _interpolate(sql: str, ctx: QueryContext) -> str:
    builtins = {
        "__interval": ctx.interval,
        "__interval_ms": str(int(parse_duration(ctx.interval) * 1000)),
        "__rate_interval": ctx.interval,
    }

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[3]
        if name in builtins:
            return builtins[name]
        if name.startswith("__"):
            return match[0]  # a macro name such as $__timeFilter: the back end's job
        if name not in ctx.variables:
            raise MacroError(f"dashboard variable ${name} has no value")
        value = ctx.variables[name]
        if isinstance(value, tuple):
            return ",".join("'" + v.replace("'", "''") + "'" for v in value)
        return value.replace("'", "''")

    return _VARIABLE.sub(replace, sql)


def _expand_macros(sql: str, ctx: QueryContext) -> str:
    def replace(match: re.Match[str]) -> str:
        name, raw_args = match[1], match[2]
        args = [a.strip() for a in raw_args.split(",")] if raw_args.strip() else []
        return _macro(name, args, ctx)

    return _MACRO.sub(replace, sql)


def _timestamp(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"'{text}'"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _macro(name: str, args: list[str], ctx: QueryContext) -> str:
    def need(count: int) -> None:
        if len(args) < count:
            raise MacroError(f"${name} needs {count} argument(s), got {len(args)}")

    if name == "__time":
        need(1)
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        need(1)
        return f'extract(epoch from {args[0]}) AS "time"'
    if name == "__timeFilter":
        need(1)
        return f"{args[0]} BETWEEN {_timestamp(ctx.time_from)} AND {_timestamp(ctx.time_to)}"
    if name == "__timeFrom":
        return _timestamp(ctx.time_from)
    if name == "__timeTo":
        return _timestamp(ctx.time_to)
    if name in ("__timeGroup", "__timeGroupAlias"):
        need(2)
        seconds = parse_duration(args[1])
        group = f"floor(extract(epoch from {args[0]})/{seconds:g})*{seconds:g}"
        return f'{group} AS "time"' if name == "__timeGroupAlias" else group
    if name == "__unixEpochFilter":
        need(1)
        lo, hi = _epoch(ctx.time_from), _epoch(ctx.time_to)
        return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
    if name == "__unixEpochFrom":
        return str(_epoch(ctx.time_from))
    if name == "__unixEpochTo":
        return str(_epoch(ctx.time_to))
    raise MacroError(f"unknown macro ${name}")
