"""``termwatch terminals import FILE.csv``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from terminals import registry
from termwatch.cli import Commands
from termwatch.db import connect
from termwatch.settings import Settings


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Load the registry file; exit 1 (changing nothing) when it is refused."""
    path: Path = args.file
    try:
        total = registry.check_file(path)
        with connect(settings.require_database()) as conn:
            result = registry.load(conn, registry.terminals_of(registry.file_lines(path)))
    except registry.RegistryError as exc:
        for line, reason in exc.problems:
            where = f"{path}:{line}" if line else str(path)
            print(f"termwatch: {where}: {reason}", file=sys.stderr)
        more = f" ({exc.more} more problems not shown)" if exc.more else ""
        count = len(exc.problems) + exc.more
        print(
            f"termwatch: {path}: refused, {count} problem{'s' if count > 1 else ''}{more};"
            " nothing was imported",
            file=sys.stderr,
        )
        return 1
    print(
        f"imported {total} terminals from {path}: {result.inserted} new, {result.updated} updated"
    )
    return 0


def register(commands: Commands) -> None:
    """Add ``terminals import``."""
    group = commands.group("terminals", "the fleet registry")
    parser = group.add_parser(
        "import",
        help="load or update the fleet registry from a CSV file (all or nothing)",
        description="Columns: " + ",".join(registry.COLUMNS) + " (UTF-8, header row required).",
    )
    parser.add_argument("file", type=Path, metavar="FILE.csv")
    parser.set_defaults(func=cmd_import)
