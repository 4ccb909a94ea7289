"""Command-line entry points of the web area: ``termwatch api``, ``termwatch status TID``
and ``termwatch console screenshots DIR``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal, cast

import msgspec
import uvicorn
from rich.console import Console

from termwatch.cli import Commands
from termwatch.db import connect
from termwatch.schema import require_schema
from termwatch.settings import TID_RE, Settings
from termwatch.web.card import CardQuery, terminal_card
from termwatch.web.read import OperationFilter


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the HTTP API, the console and ``/metrics`` on ``settings.http``."""
    from terminals.gauge import RegistryGauge
    from termwatch.web.app import create_app

    require_schema(settings.require_database())
    app = create_app(settings)
    gauge = RegistryGauge(settings.require_database())
    gauge.start()
    uvicorn.run(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_level=settings.log_level.lower(),
        access_log=args.access_log,
        server_header=False,
    )
    gauge.stop()
    return 0


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("give the offset too, e.g. 2026-05-04T10:30+03:00")
    return parsed


def _rub(value: str) -> int:
    try:
        return round(float(value.replace(",", ".")) * 100)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"an amount such as 500 or 500.50, got {value!r}"
        ) from None


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print the card of one terminal; exit 1 when the terminal is unknown, 2 when the id is
    malformed or the database cannot answer."""
    tid: str = args.tid
    if not TID_RE.fullmatch(tid):
        print(f"termwatch status: {tid!r} is not a terminal id", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    tz = (
        timezone(timedelta(minutes=args.tz_offset_min))
        if args.tz_offset_min is not None
        else (now.astimezone().tzinfo or UTC)
    )
    query = CardQuery(
        tid=tid,
        lang=cast(Literal["en", "ru"], args.lang or settings.language),
        operations=OperationFilter(
            amount_minor=args.amount,
            around=args.at,
            window=timedelta(minutes=args.window),
            limit=args.limit,
        ),
        op_id=args.op,
        tz=tz,
    )
    with connect(settings.require_database(), autocommit=True) as conn:
        card = terminal_card(conn, query, now)
    if card is None:
        print(f"termwatch status: no terminal {tid}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(card)) + b"\n")
        return 0
    from termwatch.web.status_view import render

    render(card, now, tz, Console())
    return 0


def cmd_screenshots(args: argparse.Namespace, settings: Settings) -> int:
    """Save every console page in both languages as PNG into ``args.dir``; exit 2 when the
    console, Playwright or Chromium is missing."""
    try:
        from termwatch.web.screenshots import ScreenshotError, take
    except ImportError as exc:
        print(f"termwatch console screenshots: {exc}; pip install 'termwatch[screenshots]'",
              file=sys.stderr)  # fmt: skip
        return 2
    token = args.token or next((t.token for t in settings.api_tokens if t.role == "agent"), "")
    if not token:
        print("termwatch console screenshots: give --token (an agent token)", file=sys.stderr)
        return 2
    try:
        saved = take(args.url or settings.base_url, token, Path(args.dir),
                     chromium=args.chromium, search=args.search)  # fmt: skip
    except ScreenshotError as exc:
        print(f"termwatch console screenshots: {exc}", file=sys.stderr)
        return 2
    for path in saved:
        print(path)
    return 0


def register(commands: Commands) -> None:
    """Add ``api``, ``status`` and ``console screenshots``."""
    console = commands.group("console", "the web console's tools")
    shots = console.add_parser(
        "screenshots",
        help="screenshots of every console page in English and Russian",
        description="Screenshots of every console page in English and Russian, from a running"
        " console (e.g. termwatch demo), taken with the system's Chromium.",
    )
    shots.set_defaults(func=cmd_screenshots)
    shots.add_argument("dir", help="where to save the PNG files (e.g. docs/img)")
    shots.add_argument("--url", help="the console's address (default: TERMWATCH_PUBLIC_URL)")
    shots.add_argument("--token", help="an agent token (default: the first agent token set)")
    shots.add_argument("--chromium", default="/usr/bin/chromium", help="the browser to drive")
    shots.add_argument("--search", default="Казань", help="the search to show")

    api = commands.add("api", cmd_api, "serve the HTTP API and the web console")
    api.add_argument("--access-log", action="store_true", help="log every request")

    status = commands.add("status", cmd_status, "the support agent's view of one terminal")
    status.add_argument("tid", help="terminal id")
    status.add_argument("--json", action="store_true", help="print the card as JSON")
    status.add_argument("--lang", choices=("en", "ru"), help="language (default: settings)")
    status.add_argument("--amount", type=_rub, metavar="RUB", help="operations of this amount")
    status.add_argument("--at", type=_timestamp, metavar="TIME", help="operations near this time")
    status.add_argument("--window", type=int, default=30, metavar="MIN", help="± minutes of --at")
    status.add_argument("--op", metavar="OP_ID", help="explain this operation")
    status.add_argument("--limit", type=int, default=10, help="operations to list")
    status.add_argument(
        "--tz-offset-min", type=int, metavar="MIN", help="show times at this UTC offset"
    )
