"""The ``termwatch`` command line.

Each area registers its own sub-commands (``register(commands)`` in its ``cli`` module); a
command is a function ``(args, settings) -> int`` set as ``func`` on its parser.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from termwatch import __version__
from termwatch.schema import SchemaError
from termwatch.settings import Settings, SettingsError, load_settings

#: Modules with a ``register(commands: Commands) -> None`` function.
COMMAND_MODULES = (
    "termwatch.cli_db",
    "termwatch.cli_users",
    "terminals.cli",
    "collector.cli",
    "rules.cli",
    "simulator.cli",
    "notify.cli",
    "termwatch.web.cli",
    "dashboards.cli",
    "termwatch.run",
    "bench.cli",
)

Command = Callable[[argparse.Namespace, Settings], int]


@dataclass(frozen=True, slots=True)
class Commands:
    """Where modules add their sub-commands: the top level and the ``bench`` group."""

    top: argparse._SubParsersAction[argparse.ArgumentParser]
    bench: argparse._SubParsersAction[argparse.ArgumentParser]

    def add(self, name: str, func: Command, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser = self.top.add_parser(name, help=help, description=help, **kwargs)
        parser.set_defaults(func=func)
        return parser

    def group(self, name: str, help: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        """A command with sub-commands of its own (``termwatch incidents list``)."""
        parser = self.top.add_parser(name, help=help, description=help)
        sub = parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")
        return sub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="termwatch",
        description="Incident monitoring for self-service payment terminals.",
    )
    parser.add_argument("--version", action="version", version=f"termwatch {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench_parser = top.add_parser("bench", help="benchmarks that print their figures")
    bench = bench_parser.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    commands = Commands(top=top, bench=bench)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(config_file=args.config)
    except SettingsError as exc:
        print(f"termwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    func: Command = args.func
    try:
        return func(args, settings)
    except SettingsError as exc:
        print(f"termwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    except SchemaError as exc:
        print(f"termwatch: {exc}", file=sys.stderr)
        return 1
    except (psycopg.OperationalError, PoolTimeout) as exc:
        print(f"termwatch: {database_problem(settings.database_url, exc)}", file=sys.stderr)
        return 1
    except psycopg.errors.UndefinedTable as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"termwatch: the database has no termwatch schema ({reason});"
            " run: termwatch db migrate",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


def database_problem(dsn: str | None, exc: BaseException) -> str:
    """One line saying which database failed and how, for a person to act on.

    Names the host, port and database of ``dsn`` (never its password) and the server's or
    libpq's own reason, without the hints and context lines that follow it.
    """
    where = "the database"
    if dsn:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            params = {}
        host = params.get("host") or "localhost"
        port = params.get("port") or "5432"
        name = params.get("dbname") or params.get("user") or "postgres"
        where = f"PostgreSQL at {host}:{port}, database {name}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    # libpq: 'connection failed: connection to server at "h" (h), port p failed: <reason>'
    reason = reason.rpartition(" failed: ")[2] or reason
    reason = reason.removeprefix("FATAL:").strip()
    if isinstance(exc, PoolTimeout) or "timeout" in reason.lower():
        hint = "is the server up and the network path open?"
    elif "does not exist" in reason and "database" in reason:
        hint = "create it (createdb) or fix TERMWATCH_DATABASE_URL"
    elif "authentication" in reason or "password" in reason:
        hint = "check the user and password in TERMWATCH_DATABASE_URL"
    else:
        hint = "is PostgreSQL running there? check TERMWATCH_DATABASE_URL"
    return f"cannot use {where}: {reason}; {hint}"


if __name__ == "__main__":
    sys.exit(main())
