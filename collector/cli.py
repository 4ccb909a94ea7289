"""``termwatch collector``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

import psycopg
from prometheus_client import start_http_server

from collector.service import Collector
from termwatch.cli import Commands
from termwatch.schema import require_schema
from termwatch.settings import Settings

log = logging.getLogger(__name__)


def cmd_collector(args: argparse.Namespace, settings: Settings) -> int:
    """Run the collector with the rule engine and complaint intake until SIGINT/SIGTERM.

    Exit status 0 after a clean stop, 1 when the writer stopped on an error (for example,
    the schema is missing: run ``termwatch db migrate``).
    """
    from rules.config import check_rules_file
    from rules.engine import RuleEngine
    from rules.intake import ComplaintIntake
    from terminals.gauge import RegistryGauge

    dsn = settings.require_database()
    settings.require_mqtt()
    if problems := check_rules_file(settings.rules_file):
        for line in problems:
            print(f"termwatch: {line}", file=sys.stderr)
        return 2
    require_schema(dsn)
    engine = RuleEngine(settings, dsn)
    collector = Collector(settings, hooks=[engine], complaints=ComplaintIntake(settings))
    try:
        start_http_server(settings.metrics.port, settings.metrics.host)
    except OSError as exc:
        print(f"termwatch: TERMWATCH_METRICS {settings.metrics}: {exc.strerror}", file=sys.stderr)
        return 2
    log.info("metrics on http://%s/metrics", settings.metrics)
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    gauge = RegistryGauge(dsn)
    gauge.start()
    collector.start()
    try:
        while not stop.wait(0.5) and not collector.failed.is_set():
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        collector.stop()
        engine.close()
        gauge.stop()
    error = collector.writer.error
    if error is not None:
        if isinstance(error, psycopg.errors.UndefinedTable):
            print(
                f"termwatch: the database has no termwatch schema ({error});"
                " run: termwatch db migrate",
                file=sys.stderr,
            )
        else:
            print(f"termwatch: the collector stopped: {error!r}", file=sys.stderr)
        return 1
    return 0


def register(commands: Commands) -> None:
    """Add ``collector``."""
    commands.add(
        "collector",
        cmd_collector,
        "store telemetry from the broker and run the rules on it (Ctrl-C stops it)",
    )
