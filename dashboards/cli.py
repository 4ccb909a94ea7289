"""``termwatch dashboards generate|check|push`` and ``termwatch report availability``."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dashboards import generate
from dashboards.macros import QueryContext
from dashboards.push import FOLDER_TITLE, FOLDER_UID, PushError, push
from dashboards.report import LEVELS, OUTAGE_KINDS, Period, ReportError, build_report, write_report
from dashboards.schedule import ScheduleError, parse_schedule
from dashboards.verify import GRAFANA_ROLE, run_queries, sql_queries
from termwatch.cli import Commands
from termwatch.db import connect
from termwatch.settings import Settings


class _InputError(ValueError):
    """A command-line value is wrong; the message names the option."""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _InputError(f"--tz: unknown time zone {name!r}") from None


def parse_moment(text: str, zone: ZoneInfo, option: str) -> datetime:
    """``YYYY-MM-DD`` (midnight) or an ISO 8601 date-time; without an offset, in ``zone``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _InputError(
            f"{option}: expected YYYY-MM-DD or an ISO 8601 time, got {text!r}"
        ) from None
    if len(text) == 10:
        moment = datetime.combine(moment.date(), time())
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    out = Path(args.out)
    if args.check:
        stale = generate.stale(out)
        for name in stale:
            print(
                f"{out / name} is out of date: run termwatch dashboards generate", file=sys.stderr
            )
        return 1 if stale else 0
    for path in generate.write(out):
        print(f"wrote {path}")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    try:
        zone = _zone(args.tz)
        ctx = QueryContext(
            time_from=parse_moment(args.from_, zone, "--from"),
            time_to=parse_moment(args.to, zone, "--to"),
            interval=args.interval,
            variables={"terminal": args.terminal},
        )
    except (_InputError, ValueError) as exc:
        print(f"termwatch dashboards check: {exc}", file=sys.stderr)
        return 2
    failed = 0
    with connect(settings.require_database(), autocommit=True) as conn:
        for model in generate.models():
            role = None if args.no_role else GRAFANA_ROLE
            for result in run_queries(conn, sql_queries(model), ctx, as_role=role):
                where = f"{result.query.dashboard} / {result.query.panel} {result.query.ref_id}"
                if result.error:
                    failed += 1
                    print(f"FAIL {where}: {result.error}")
                else:
                    print(f"ok   {where}: {result.rows} rows")
    return 1 if failed else 0


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    token = args.token
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(f"termwatch dashboards push: --token-file: {exc}", file=sys.stderr)
            return 2
    if not token:
        print("termwatch dashboards push: give --token or --token-file", file=sys.stderr)
        return 2
    try:
        pushed = push(
            args.url,
            token,
            generate.models(),
            folder_uid=args.folder_uid,
            folder_title=args.folder_title,
        )
    except PushError as exc:
        print(f"termwatch dashboards push: {exc}", file=sys.stderr)
        return 1
    for item in pushed:
        print(f"pushed {item.uid} version {item.version} {item.url}")
    return 0


def cmd_availability(args: argparse.Namespace, settings: Settings) -> int:
    try:
        zone = _zone(args.tz)
        period = Period(
            parse_moment(args.from_, zone, "--from"), parse_moment(args.to, zone, "--to")
        )
        schedule = parse_schedule(args.schedule, args.tz)
        kinds = tuple(k.strip() for k in args.outage_kinds.split(",") if k.strip())
        out = Path(args.out)
        if out.suffix.lower() not in (".csv", ".xlsx"):
            raise ReportError(f"--out: the file must end in .csv or .xlsx, got {out.name!r}")
    except (_InputError, ScheduleError, ReportError) as exc:
        print(f"termwatch report availability: {exc}", file=sys.stderr)
        return 2
    with connect(settings.require_database(), autocommit=True) as conn:
        report = build_report(conn, period, schedule, kinds)
    write_report(report, out, args.level)
    fleet = report.fleet.iloc[0] if len(report.fleet) else None
    summary = f", fleet availability {fleet['availability_pct']:.3f} %" if fleet is not None else ""
    print(f"wrote {out}: {len(report.terminals)} terminals{summary}")
    return 0


def register(commands: Commands) -> None:
    """Add ``dashboards`` and ``report`` with their sub-commands."""
    group = commands.group("dashboards", "Grafana dashboards as code")
    p = group.add_parser("generate", help="write the dashboards' JSON files")
    p.add_argument("--out", default=str(generate.JSON_DIR), help="folder (default: %(default)s)")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if out of date")
    p.set_defaults(func=cmd_generate)

    p = group.add_parser("check", help="run every panel's SQL against the database")
    p.add_argument("--from", dest="from_", required=True, metavar="TIME")
    p.add_argument("--to", required=True, metavar="TIME")
    p.add_argument("--tz", default="UTC", help="zone of times without offset (default UTC)")
    p.add_argument("--interval", default="1h", help="$__interval (default %(default)s)")
    p.add_argument("--terminal", default="", help="value of the $terminal variable")
    p.add_argument("--no-role", action="store_true", help=f"do not SET ROLE {GRAFANA_ROLE}")
    p.set_defaults(func=cmd_check)

    p = group.add_parser("push", help="upload the dashboards to a Grafana")
    p.add_argument("--url", required=True, help="Grafana's base URL")
    p.add_argument("--token", default="", help="service account token (Editor)")
    p.add_argument("--token-file", help="read the token from this file instead")
    p.add_argument("--folder-uid", default=FOLDER_UID)
    p.add_argument("--folder-title", default=FOLDER_TITLE)
    p.set_defaults(func=cmd_push)

    report = commands.group("report", "reports for partners")
    p = report.add_parser("availability", help="the SLA report for a period (CSV or XLSX)")
    p.add_argument("--from", dest="from_", required=True, metavar="TIME", help="start (included)")
    p.add_argument("--to", required=True, metavar="TIME", help="end (excluded)")
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.csv or FILE.xlsx")
    p.add_argument(
        "--schedule",
        default="24/7",
        help="scheduled hours, e.g. 'mon-fri 08:00-20:00; sat 10:00-16:00' (default 24/7)",
    )
    p.add_argument("--tz", default="UTC", help="zone of the schedule and of dates (default UTC)")
    p.add_argument("--level", choices=LEVELS, default="terminal", help="CSV: which table")
    p.add_argument(
        "--outage-kinds",
        default=",".join(OUTAGE_KINDS),
        help="incident kinds that count as downtime (default: %(default)s)",
    )
    p.set_defaults(func=cmd_availability)
