"""``termwatch bench ingest|api|notify|publish``: the benchmarks' command lines.

Each benchmark's module is imported when its command runs, not when the command line is
built, so that ``termwatch --help`` and every other command never load what only a
benchmark needs. A benchmark whose extra is not installed says, in one line, which to add.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Final

from termwatch.cli import Command, Commands
from termwatch.settings import Settings

#: Modules a benchmark may need beyond a plain install, and the extra that provides each.
EXTRAS: Final = {"httpx": "bench"}

DATABASE_SERVER_HELP: Final = (
    "PostgreSQL server to create the scratch database on"
    " (default: TERMWATCH_DATABASE_URL's server, else the local one)"
)


def _lazy(module: str, function: str) -> Command:
    """A command that imports ``module`` when it runs and calls its ``function``."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            extra = EXTRAS.get((exc.name or "").partition(".")[0])
            if extra is None:
                raise
            print(
                f"termwatch: bench {args.bench_command} needs {exc.name}, which a plain install"
                f" leaves out; install it with: pip install 'termwatch[{extra}]'",
                file=sys.stderr,
            )
            return 2
        result: int = getattr(mod, function)(args, settings)
        return result

    return run


def _ingest(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = bench.add_parser(
        "ingest",
        help="messages per second the collector commits, on its own broker and database",
        description="Messages per second the collector commits and judges with the default"
        " rules, as deployed, beside the figure without rules; on a Mosquitto and scratch"
        " databases of its own. The last line holds the figures.",
    )
    parser.set_defaults(func=_lazy("bench.ingest", "cmd_ingest"))
    parser.add_argument(
        "--rules",
        choices=("both", "on", "off"),
        default="both",
        help="the default rules and complaint intake as deployed ('on'), none ('off'),"
        " or one run of each, rules off first (default 'both')",
    )
    parser.add_argument("--messages", type=int, default=200_000, help="total (default 200000)")
    parser.add_argument("--publishers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--terminals", type=int, default=1000, help="terminals per publisher (default 1000)"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=20_000,
        help="most messages published ahead of the commits (default 20000)",
    )
    parser.add_argument("--database-server", metavar="DSN", help=DATABASE_SERVER_HELP)


def _api(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = bench.add_parser(
        "api", help="API and console latency with a large fleet under ingest load"
    )
    parser.set_defaults(func=_lazy("bench.api", "run"))
    parser.add_argument("--terminals", type=int, default=100_000, help="registered (100000)")
    parser.add_argument("--history", type=int, default=1_000, help="with history (1000)")
    parser.add_argument("--days", type=int, default=30, help="days of history (30)")
    parser.add_argument("--ops-per-day", type=int, default=48, help="per terminal (48)")
    parser.add_argument("--rate", type=int, default=5_000, help="ingest msg/s (5000)")
    parser.add_argument("--requests", type=int, default=2_000, help="of each kind (2000)")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="ingest before measuring")
    parser.add_argument(
        "--inside-serve",
        action="store_true",
        help="run the collector (default rules on) and the API in one process, as"
        " 'termwatch serve' does (default: each in a process of its own)",
    )
    parser.add_argument(
        "--keep-database",
        metavar="NAME",
        help="load the fleet into this database on the server and keep it; a later run"
        " with the same sizes reuses it instead of loading again",
    )
    parser.add_argument("--database-server", metavar="DSN", help=DATABASE_SERVER_HELP)


def _notify(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = bench.add_parser(
        "notify",
        help="latency from an incident opened to the webhook receiving it",
        description="Creates a scratch database on the configured server, dropped after.",
    )
    parser.set_defaults(func=_lazy("bench.notify", "main"))
    parser.add_argument("--incidents", type=int, default=200, help="incidents to open (200)")
    parser.add_argument("--rate", type=float, default=20.0, help="incidents per second (20)")
    parser.add_argument("--group-wait", type=int, default=0, help="group_wait in seconds (0)")
    parser.add_argument("--threads", type=int, default=4, help="delivery threads (4)")


def _publish(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = bench.add_parser(
        "publish", help="load mode: publish telemetry at a target rate from several processes"
    )
    parser.set_defaults(func=_lazy("simulator.loadgen", "bench_command"))
    parser.add_argument("--processes", type=int, default=2, help="publishing processes (default 2)")
    parser.add_argument(
        "--connections", type=int, default=4, help="MQTT connections per process (default 4)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="how long to publish (default 10)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="target msg/s in total (default 0: as fast as possible)",
    )
    parser.add_argument(
        "--qos", type=int, choices=(0, 1), default=0, help="QoS of the messages (default 0)"
    )
    parser.add_argument(
        "--broker",
        choices=("own", "configured"),
        default="own",
        help="'own': a tuned Mosquitto on a free port (default); 'configured': TERMWATCH_MQTT_URL",
    )


def _import(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = bench.add_parser(
        "import", help="time and peak memory of 'termwatch terminals import' of a large fleet"
    )
    parser.set_defaults(func=_lazy("bench.registry", "main"))
    parser.add_argument(
        "--terminals", type=int, default=200_000, help="in the registry (default 200000)"
    )
    parser.add_argument("--database-server", metavar="DSN", help=DATABASE_SERVER_HELP)


def _fleet(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = bench.add_parser(
        "fleet",
        help="termwatch serve with a national fleet: heartbeats, a reconnect storm, the card",
        description="termwatch serve, as deployed, with a registry of --terminals: CPU per"
        " heartbeat against a 2,000-terminal fleet, the terminal card's p99 under the"
        " heartbeats and during a reconnect storm, the storm's drain time, false incidents"
        " and memory. The last line holds the figures.",
    )
    parser.set_defaults(func=_lazy("bench.scale", "main"))
    parser.add_argument(
        "--terminals", type=int, default=200_000, help="in the registry (default 200000)"
    )
    parser.add_argument(
        "--interval", type=int, default=60, help="heartbeat interval in seconds (default 60)"
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="of each heartbeat phase (default 60)"
    )
    parser.add_argument(
        "--probe-rate", type=float, default=20.0, help="card requests a second (default 20)"
    )
    parser.add_argument("--database-server", metavar="DSN", help=DATABASE_SERVER_HELP)


def register(commands: Commands) -> None:
    """Add ``bench ingest``, ``api``, ``notify``, ``publish``, ``import`` and ``fleet``."""
    for add in (_ingest, _api, _notify, _publish, _import, _fleet):
        add(commands.bench)
