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

from termwatch import __version__
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
