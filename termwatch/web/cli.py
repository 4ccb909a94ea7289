"""Command-line entry points of the web area: ``termwatch api`` and ``termwatch status TID``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta, timezone
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


def register(commands: Commands) -> None:
    """Add ``api`` and ``status``."""
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
