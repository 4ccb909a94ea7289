"""``termwatch users add|list|revoke|rotate``: people's accounts and their tokens."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from termwatch import accounts
from termwatch.cli import Commands
from termwatch.db import connect
from termwatch.settings import ROLES, Settings


def _now() -> datetime:
    return datetime.now(UTC)


def _fail(message: str) -> int:
    print(f"termwatch: {message}", file=sys.stderr)
    return 1


def _show_token(name: str, token: str) -> None:
    print(f"token of {name} (shown only now; termwatch keeps only its hash):")
    print(token)


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with connect(settings.require_database(), autocommit=True) as conn:
            token = accounts.add(conn, args.name, args.role, _now())
    except accounts.AccountError as exc:
        return _fail(str(exc))
    _show_token(args.name.strip().lower(), token)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings.require_database(), autocommit=True) as conn:
        rows = accounts.listing(conn)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    if not rows:
        print("no accounts")
    for r in rows:
        state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "active"
        print(f"{r['name']:<24} {r['role']:<9} {state}  since {r['created_at']:%Y-%m-%d}")
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with connect(settings.require_database(), autocommit=True) as conn:
            accounts.revoke(conn, args.name, _now())
    except accounts.AccountError as exc:
        return _fail(str(exc))
    print(f"revoked {args.name}: the token and its console sessions no longer work")
    return 0


def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with connect(settings.require_database(), autocommit=True) as conn:
            token = accounts.rotate(conn, args.name, _now())
    except accounts.AccountError as exc:
        return _fail(str(exc))
    _show_token(args.name.strip().lower(), token)
    return 0


def register(commands: Commands) -> None:
    users = commands.group("users", "people's accounts: add, list, revoke, rotate")
    p = users.add_parser("add", help="add an account and print its token (once)")
    p.add_argument("name", help="the person's name as shown in history (e.g. anna.petrova)")
    p.add_argument("--role", choices=ROLES, required=True)
    p.set_defaults(func=cmd_add)
    p = users.add_parser("list", help="accounts, their roles and whether they are revoked")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_list)
    p = users.add_parser("revoke", help="refuse an account's token from now on")
    p.add_argument("name")
    p.set_defaults(func=cmd_revoke)
    p = users.add_parser("rotate", help="replace an account's token and print the new one")
    p.add_argument("name")
    p.set_defaults(func=cmd_rotate)
