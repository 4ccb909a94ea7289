"""``termwatch db migrate``."""

from __future__ import annotations

import argparse

from termwatch.cli import Commands
from termwatch.schema import migrate
from termwatch.settings import Settings


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    applied = migrate(settings.require_database(), settings)
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("schema is up to date")
    return 0


def register(commands: Commands) -> None:
    db = commands.group("db", "database schema")
    parser = db.add_parser("migrate", help="create or upgrade the schema (idempotent)")
    parser.set_defaults(func=cmd_migrate)
