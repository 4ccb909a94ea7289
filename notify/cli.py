"""Command-line entry points of this area.

* ``termwatch notifications run``: the notification worker alone, until interrupted;
* ``termwatch notifications check-routes [FILE]``: read a routes file, list its problems;
* ``termwatch notifications summary [--since WHEN] [--json]``: messages sent per group;
* ``termwatch notifications history INCIDENT_ID [--json]``: an incident's deliveries;
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from notify.history import deliveries, summary
from notify.routes import RoutesError, load_routes
from notify.worker import NotifyWorker
from termwatch.cli import Commands
from termwatch.db import connect
from termwatch.settings import Settings

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def register(commands: Commands) -> None:
    """Add this area's sub-commands."""
    group = commands.group("notifications", "alerts for field engineers: routes and deliveries")

    run = group.add_parser("run", help="deliver notifications until interrupted")
    run.add_argument("--threads", type=int, default=4, help="delivery threads (default 4)")
    run.set_defaults(func=cmd_run)

    check = group.add_parser("check-routes", help="check a routes file and list its problems")
    check.add_argument("file", nargs="?", type=Path, help="default: TERMWATCH_ROUTES_FILE")
    check.set_defaults(func=cmd_check)

    summ = group.add_parser("summary", help="messages sent per service group and event")
    summ.add_argument(
        "--since", help="ISO time (2026-05-04T00:00+03:00) or a span back from now (24h, 7d)"
    )
    summ.add_argument("--json", action="store_true", help="print JSON")
    summ.set_defaults(func=cmd_summary)

    hist = group.add_parser("history", help="every delivery attempt for one incident")
    hist.add_argument("incident_id", type=int)
    hist.add_argument("--json", action="store_true", help="print JSON")
    hist.set_defaults(func=cmd_history)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        worker = NotifyWorker(settings, settings.require_database(), threads=args.threads)
    except RoutesError as exc:
        print(f"termwatch: bad routes file:\n{exc}", file=sys.stderr)
        return 2
    settings.require_link_key()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    worker.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.routes_file
    if path is None:
        print("no routes file given and TERMWATCH_ROUTES_FILE is not set", file=sys.stderr)
        return 2
    try:
        routes = load_routes(path)
    except RoutesError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{path}: ok, {len(routes.targets)} target(s), default route and"
        f" {len(routes.groups)} group route(s): {', '.join(sorted(routes.groups)) or 'none'}"
    )
    return 0


def parse_since(value: str, now: datetime) -> datetime:
    """``24h``/``30m``/``7d``/``90s`` back from ``now``, or an ISO time (UTC if no offset).

    Raises ValueError with a readable message.
    """
    match = _AGO.fullmatch(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--since: expected an ISO time or a span like 24h, got {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    since = None
    if args.since:
        try:
            since = parse_since(args.since, datetime.now(UTC))
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    with connect(settings.require_database()) as conn:
        rows = summary(conn, since)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_summary(rows, since))
    return 0


def format_summary(rows: list[dict[str, Any]], since: datetime | None) -> str:
    """The summary as an aligned text table with a total line."""
    header = ("route", "event", "messages", "incidents", "sent", "failed", "waiting", "suppressed")
    keys = ("route", "event", "messages", "incidents", "deliveries_sent", "deliveries_failed",
            "deliveries_waiting", "suppressed")  # fmt: skip
    table = [header, *[tuple(str(r[k]) for k in keys) for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in table
    ]
    scope = f"since {since.isoformat()}" if since else "in all"
    total = sum(int(r["messages"]) for r in rows)
    lines.append(f"{total} message(s) {scope}")
    return "\n".join(lines)


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings.require_database()) as conn:
        rows = deliveries(conn, args.incident_id)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"nothing sent about incident {args.incident_id}")
        return 0
    for r in rows:
        target = r["target"] or "-"
        attempt = f"#{r['attempt']}" if r["attempt"] else ""
        error = f": {r['error']}" if r["error"] else ""
        print(f"{r['at'].isoformat()}  {r['event']:<9} {r['route']:<12} {target:<16}"
              f" {r['result']}{attempt}{error}")  # fmt: skip
    return 0
