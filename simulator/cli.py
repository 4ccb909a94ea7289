"""Command-line entry points of this area: ``simulate`` and ``evaluate``."""

from __future__ import annotations

import argparse
import string
from collections.abc import Callable

from termwatch.cli import Commands
from termwatch.settings import Settings


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'max', got {text!r}") from None
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError("must be between 0 and 100000 (or 'max')")
    return value


def template(*fields: str) -> Callable[[str], str]:
    """An argparse type: a ``str.format`` template that may use only ``fields``, so that a
    typo is refused at the start rather than failing at the first connection."""
    allowed = ", ".join(f"{{{f}}}" for f in fields)

    def check(text: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
            unknown = sorted(names - set(fields))
            if not unknown:
                text.format(**dict.fromkeys(fields, "T-000001"))
        except (ValueError, IndexError, KeyError) as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a template: {exc}") from None
        if unknown:
            raise argparse.ArgumentTypeError(
                f"{text!r} uses {{{unknown[0]}}}; only {allowed} may be used"
                " (write {{ and }} for a literal brace)"
            )
        return text

    return check


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from simulator.run import simulate_command

    return simulate_command(args, settings)


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from simulator.evaluate import evaluate_command

    return evaluate_command(args, settings)


def register(commands: Commands) -> None:
    """Add this area's sub-commands."""
    sim = commands.add(
        "simulate",
        _simulate,
        help="publish a simulated fleet's telemetry, operations and complaints",
    )
    sim.add_argument(
        "--scenario",
        default="day",
        metavar="NAME|FILE",
        help="shipped scenario name or YAML file (default: day)",
    )
    sim.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    sim.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="S|max",
        help="simulated seconds per wall second (default 1: real time); 'max': as fast as it goes",
    )
    sim.add_argument(
        "--start", metavar="RFC3339", help="simulated start time (default: the scenario's)"
    )
    sim.add_argument(
        "--duration",
        metavar="DUR",
        help="cut or stretch the scenario (e.g. 2h); faults past it are dropped",
    )
    sim.add_argument("--truth", metavar="FILE.jsonl", help="write the ground truth here")
    sim.add_argument(
        "--resume",
        metavar="FILE.json",
        help="start terminals' paper and stacker at the levels of a previous run"
        ' ({tid: {"paper": ..., "stacker": ...}}; docs/simulator.md)',
    )
    sim.add_argument(
        "--registry-out",
        metavar="FILE.csv",
        help="write the fleet registry CSV here (for 'termwatch terminals import')",
    )
    sim.add_argument(
        "--api-url",
        metavar="URL",
        help="termwatch API for complaints (default: http://TERMWATCH_HTTP when a token is given)",
    )
    sim.add_argument(
        "--api-token",
        metavar="TOKEN",
        help="agent token for POST /api/v1/complaints; without it complaints go over MQTT",
    )
    sim.add_argument(
        "--client-id",
        default="{tid}",
        type=template("tid", "root"),
        metavar="TEMPLATE",
        help="MQTT client id per terminal ({tid}, {root}; default {tid})",
    )
    sim.add_argument(
        "--password-template",
        type=template("tid"),
        metavar="TEMPLATE",
        help="log each terminal in as user <tid> with this password ({tid} is replaced);"
        " see docs/simulator.md for the docker-compose broker",
    )
    sim.add_argument(
        "--complaints-topic",
        default="support/complaints",
        metavar="TOPIC",
        help="MQTT topic for complaints when the API is not used",
    )
    sim.add_argument(
        "--dry-run",
        action="store_true",
        help="generate without a broker; with --out, write every message as JSON lines",
    )
    sim.add_argument(
        "--out", metavar="FILE.jsonl", help="with --dry-run: where to write the messages"
    )
    sim.add_argument("--quiet", action="store_true", help="no progress on stderr")

    ev = commands.add(
        "evaluate",
        _evaluate,
        help="compare the incidents termwatch opened with a simulation's ground truth",
    )
    ev.add_argument(
        "--truth",
        required=True,
        metavar="FILE.jsonl",
        help="ground truth written by 'termwatch simulate --truth'",
    )
    ev.add_argument(
        "--tolerance",
        default="5m",
        metavar="DUR",
        help="how long after a fault's end an incident still counts for it (default 5m)",
    )
