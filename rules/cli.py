"""Command line: ``complaints import``, ``incidents list|show|ack|resolve``,
``silences add|list|expire`` and ``rules check``.

Commands act at the wall clock's time (a person acts now); the rules run on event time.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rules import lifecycle, queries, silences
from rules.complaints_csv import ComplaintFileError, import_complaints
from rules.config import RuleFileError, load_rules
from rules.intake import ComplaintIntake
from rules.journal import Conn
from termwatch.cli import Commands
from termwatch.db import connect
from termwatch.settings import Settings

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def _now() -> datetime:
    return datetime.now(UTC)


def _print_json(value: Any) -> None:
    print(json.dumps(queries.jsonable(value), ensure_ascii=False, indent=2))


def _fail(message: str) -> int:
    for line in message.splitlines():
        print(f"termwatch: {line}", file=sys.stderr)
    return 1


# -- complaints ---------------------------------------------------------------------------


def cmd_complaints_import(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    try:
        intake = ComplaintIntake(settings)
        with connect(settings.require_database(), autocommit=True) as conn:
            summary = import_complaints(conn, intake, path, _now())
    except ComplaintFileError as exc:
        print(f"termwatch: {path}: refused, nothing imported", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    except RuleFileError as exc:
        return _fail(str(exc))
    print(
        f"imported {summary.created} complaints ({summary.known} already known); "
        f"{summary.matched} matched to an operation, {summary.attached} attached to an incident"
    )
    return 0


# -- incidents ----------------------------------------------------------------------------


def _money(minor: int) -> str:
    return f"{minor / 100:.2f}"


def cmd_incidents_list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with connect(settings.require_database(), autocommit=True) as conn:
            rows = queries.list_incidents(
                conn, status=args.status, tid=args.tid, kind=args.kind, limit=args.limit
            )
    except ValueError as exc:
        return _fail(str(exc))
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no incidents")
        return 0
    print(f"{'id':>6}  {'status':<12} {'severity':<8} {'kind':<26} {'tid':<20} opened")
    for r in rows:
        extra = " (silenced)" if r["silenced"] else ""
        extra += f" (group #{r['parent_id']})" if r["parent_id"] else ""
        print(
            f"{r['id']:>6}  {r['status']:<12} {r['severity']:<8} {r['kind']:<26} "
            f"{r['tid']:<20} {r['opened_at']:%Y-%m-%d %H:%M:%S%z}{extra}"
        )
    return 0


def cmd_incidents_show(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings.require_database(), autocommit=True) as conn:
        detail = queries.incident_detail(conn, args.id)
    if detail is None:
        return _fail(f"no incident {args.id}")
    if args.json:
        _print_json(detail)
        return 0
    print(f"#{detail['id']} {detail['title']}")
    print(f"  kind {detail['kind']}, severity {detail['severity']}, status {detail['status']}")
    print(f"  opened {detail['opened_at']:%Y-%m-%d %H:%M:%S%z}")
    for key in ("acknowledged", "resolved"):
        if detail[f"{key}_at"] is not None:
            print(f"  {key} {detail[f'{key}_at']:%Y-%m-%d %H:%M:%S%z} by {detail[f'{key}_by']}")
    print(
        f"  complaints {detail['complaints']}, operations affected "
        f"{detail['operations_affected']}, money at risk {_money(detail['money_at_risk_minor'])}"
    )
    for group, items in detail["evidence"].items():
        for item in items:
            print(f"  {group[:-1]:<9} {item['ts']:%Y-%m-%d %H:%M:%S%z}  {item['summary']}")
    for entry in detail["log"]:
        note = f": {entry['note']}" if entry["note"] else ""
        when = f"{entry['at']:%Y-%m-%d %H:%M:%S%z}"
        print(f"  log       {when}  {entry['action']} by {entry['actor']}{note}")
    return 0


def _transition(args: argparse.Namespace, settings: Settings, action: str) -> int:
    change = lifecycle.acknowledge if action == "acknowledge" else lifecycle.resolve
    try:
        with connect(settings.require_database(), autocommit=True) as conn:
            change(conn, args.id, args.by, args.note, _now())
    except lifecycle.IncidentNotFound:
        return _fail(f"no incident {args.id}")
    except (lifecycle.InvalidTransition, ValueError) as exc:
        return _fail(str(exc))
    print(f"incident {args.id} {action}d")
    return 0


def cmd_incidents_ack(args: argparse.Namespace, settings: Settings) -> int:
    return _transition(args, settings, "acknowledge")


def cmd_incidents_resolve(args: argparse.Namespace, settings: Settings) -> int:
    return _transition(args, settings, "resolve")


# -- silences -----------------------------------------------------------------------------


def _until(args: argparse.Namespace, now: datetime) -> datetime:
    if args.until:
        try:
            ends = datetime.fromisoformat(args.until)
        except ValueError:
            raise ValueError(
                "--until: expected an ISO time such as 2026-05-04T18:00+03:00"
            ) from None
        if ends.tzinfo is None:
            raise ValueError("--until: give the time zone offset (e.g. +03:00 or Z)")
        return ends
    match = _DURATION.match(args.for_ or "")
    if not args.for_ or not match:
        raise ValueError("--for: expected a duration such as 30m, 2h or 1d12h")
    d, h, m = (int(g) if g else 0 for g in match.groups())
    return now + timedelta(days=d, hours=h, minutes=m)


def _silence_matchers(args: argparse.Namespace) -> list[silences.Matcher]:
    return silences.matchers_of(
        tid=args.tid,
        region=args.region,
        kind=args.kind,
        matchers=[silences.parse_matcher(text) for text in args.matcher or ()],
    )


def _print_preview(conn: Conn, found: list[silences.Matcher]) -> None:
    for warning in silences.warnings(conn, found):
        print(f"warning: {warning}", file=sys.stderr)
    matched = silences.preview(conn, found)
    print(f"{' '.join(map(str, found))}: matches {len(matched)} open incident(s)")
    for r in matched:
        print(f"  #{r['id']:<6} {r['severity']:<8} {r['kind']:<20} {r['tid']}  {r['title']}")


def cmd_silences_preview(args: argparse.Namespace, settings: Settings) -> int:
    try:
        found = _silence_matchers(args)
    except ValueError as exc:
        return _fail(str(exc))
    with connect(settings.require_database(), autocommit=True) as conn:
        _print_preview(conn, found)
    return 0


def cmd_silences_add(args: argparse.Namespace, settings: Settings) -> int:
    now = _now()
    try:
        ends = _until(args, now)
        found = _silence_matchers(args)
        with connect(settings.require_database(), autocommit=True) as conn:
            _print_preview(conn, found)
            if args.dry_run:
                print("dry run: no silence created")
                return 0
            silence_id = silences.create(
                conn,
                matchers=found,
                ends_at=ends,
                created_by=args.by,
                comment=args.comment,
                now=now,
            )
    except ValueError as exc:
        return _fail(str(exc))
    print(f"silence {silence_id} until {ends.isoformat()}")
    return 0


def cmd_silences_list(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings.require_database(), autocommit=True) as conn:
        rows = silences.list_active(conn, _now())
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no active silences")
    for r in rows:
        what = " ".join(r["matchers"])
        comment = f" ({r['comment']})" if r["comment"] else ""
        print(
            f"{r['id']:>5}  {what} until {r['ends_at'].isoformat()} by {r['created_by']}{comment}"
        )
    return 0


def cmd_silences_expire(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings.require_database(), autocommit=True) as conn:
        done = silences.expire(conn, args.id, _now())
    if not done:
        return _fail(f"no active silence {args.id}")
    print(f"silence {args.id} expired")
    return 0


# -- rules --------------------------------------------------------------------------------


def cmd_rules_check(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file if args.file is not None else settings.rules_file
    try:
        rules = load_rules(path)
    except RuleFileError as exc:
        return _fail(str(exc))
    print(f"{rules.source}: {len(rules.rules)} rules")
    for rule in rules.rules:
        print(f"  {rule.name:<28} {rule.severity:<8} {len(rule.clauses)} condition(s)")
    return 0


def register(commands: Commands) -> None:
    """Add this area's sub-commands."""
    complaints = commands.group("complaints", "customer complaints")
    p = complaints.add_parser("import", help="import complaints from a CRM export (CSV)")
    p.add_argument("file", type=Path, metavar="FILE.csv")
    p.set_defaults(func=cmd_complaints_import)

    incidents = commands.group("incidents", "incidents: list, show, acknowledge, resolve")
    p = incidents.add_parser("list", help="list incidents, newest first")
    p.add_argument("--status", choices=queries.STATUSES)
    p.add_argument("--tid")
    p.add_argument("--kind")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_incidents_list)
    p = incidents.add_parser("show", help="one incident with its evidence and log")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_incidents_show)
    for name, func, help_text in (
        ("ack", cmd_incidents_ack, "acknowledge an open incident"),
        ("resolve", cmd_incidents_resolve, "resolve an incident by hand"),
    ):
        p = incidents.add_parser(name, help=help_text)
        p.add_argument("id", type=int)
        p.add_argument("--by", default="cli", help="who acts (default: cli)")
        p.add_argument("--note")
        p.set_defaults(func=func)

    silence = commands.group("silences", "silences: mute matching incidents for a while")
    matcher_help = (
        "LABEL OP VALUE, repeatable; labels kind, tid, region, service_group, severity;"
        " OP = != =~ !~ (e.g. 'severity=~major|critical')"
    )
    p = silence.add_parser("preview", help="the open incidents a silence would match")
    p.add_argument("--tid")
    p.add_argument("--region")
    p.add_argument("--kind")
    p.add_argument("--matcher", "-m", action="append", help=matcher_help)
    p.set_defaults(func=cmd_silences_preview)
    p = silence.add_parser("add", help="add a silence (always with an end); shows its matches")
    p.add_argument("--tid")
    p.add_argument("--region")
    p.add_argument("--kind")
    p.add_argument("--matcher", "-m", action="append", help=matcher_help)
    p.add_argument("--dry-run", action="store_true", help="show the matches, create nothing")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--until", help="end time, ISO 8601 with offset")
    when.add_argument("--for", dest="for_", help="duration, e.g. 30m, 2h, 1d")
    p.add_argument("--by", default="cli", help="who silences (default: cli)")
    p.add_argument("--comment", default="")
    p.set_defaults(func=cmd_silences_add)
    p = silence.add_parser("list", help="silences in force")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_silences_list)
    p = silence.add_parser("expire", help="end a silence now")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_silences_expire)

    rules = commands.group("rules", "rule files")
    p = rules.add_parser("check", help="check a rule file (default: the configured one)")
    p.add_argument("file", type=Path, nargs="?")
    p.set_defaults(func=cmd_rules_check)
