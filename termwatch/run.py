"""``termwatch serve`` and ``termwatch demo``: the whole system in one process.

``serve`` runs the collector (with the rule engine and the complaint intake as its hooks),
the notification worker and the HTTP server (API, console, ``/metrics``) against the
configured broker and database, until SIGINT or SIGTERM. ``demo`` does the same on an
embedded PostgreSQL and broker unless ``TERMWATCH_DATABASE_URL`` / ``TERMWATCH_MQTT_URL``
are set, with a demo fleet and a simulated stream of its telemetry and complaints
(:mod:`termwatch.demo_data.runner`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from termwatch.cli import Commands
from termwatch.settings import Settings

if TYPE_CHECKING:
    from collector.clock import EventClock
    from collector.service import Collector
    from notify.worker import NotifyWorker
    from rules.engine import RuleEngine
    from terminals.gauge import RegistryGauge

log = logging.getLogger(__name__)

HTTP_START_TIMEOUT_S = 30.0


class Service:
    """collector + rules + complaint intake + notifications + HTTP API, in one process.

    ``start()`` brings the parts up in the order data flows backwards (HTTP and notifications
    first, the collector last, so nothing is received before it can be acted on). The
    constructor raises :class:`~termwatch.settings.SettingsError` when the database or the
    broker is not configured; ``start()`` raises ``OSError`` when the HTTP address is taken.
    ``stop()`` takes them down in the reverse order: the collector commits what it holds
    and stops acknowledging, then the rules, notifications and HTTP server stop.
    ``clock_factory`` makes the collector's event clock (default: the collector's own).
    ``notify_on_event_time`` gives the notification worker that event clock instead of the
    wall clock, so that a simulation run faster than real time is paged as a real day would
    be (docs/alerts.md, "Which clock").
    """

    def __init__(
        self,
        settings: Settings,
        clock_factory: Callable[[], EventClock] | None = None,
        *,
        notify_on_event_time: bool = False,
    ) -> None:
        self.settings = settings
        self._clock_factory = clock_factory
        self._notify_on_event_time = notify_on_event_time
        self.dsn = settings.require_database()
        settings.require_mqtt()
        self._http: _HttpServer | None = None
        self._notify: NotifyWorker | None = None
        self._collector: Collector | None = None
        self._engine: RuleEngine | None = None
        self._gauge: RegistryGauge | None = None

    def start(self) -> None:
        from notify.worker import NotifyWorker
        from rules.engine import RuleEngine
        from terminals.gauge import RegistryGauge
        from termwatch.web.app import create_app

        try:
            self._gauge = RegistryGauge(self.dsn)
            self._gauge.start()
            self._http = _HttpServer(create_app(self.settings), self.settings)
            self._http.start()
            if self._notify_on_event_time:
                notify = NotifyWorker(self.settings, self.dsn, clock=self.event_time)
            else:
                notify = NotifyWorker(self.settings, self.dsn)
            notify.start()
            self._notify = notify
            engine = RuleEngine(self.settings, self.dsn)
            self._engine = engine
            collector = self._new_collector()
            collector.start()
            self._collector = collector
        except BaseException:
            self.stop()
            raise

    def _new_collector(self) -> Collector:
        from collector.service import Collector
        from rules.intake import ComplaintIntake

        assert self._engine is not None
        return Collector(
            self.settings,
            hooks=[self._engine],
            complaints=ComplaintIntake(self.settings),
            clock=self._clock_factory() if self._clock_factory else None,
        )

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the collector is subscribed; False on timeout or failure."""
        return self._collector is not None and self._collector.wait_ready(timeout_s)

    @property
    def processed(self) -> int:
        """Messages the collector has committed since it started."""
        return self._collector.processed if self._collector is not None else 0

    def event_time(self) -> datetime | None:
        """The collector's event clock (None before the first message)."""
        return self._collector.clock.now() if self._collector is not None else None

    def failed(self) -> bool:
        """True when the collector stopped on an error (see :attr:`error`)."""
        return self._collector is not None and self._collector.failed.is_set()

    @property
    def error(self) -> BaseException | None:
        """Why the collector stopped, when it did."""
        return self._collector.writer.error if self._collector is not None else None

    def stop(self) -> None:
        """Stop every part that was started; idempotent."""
        collector, self._collector = self._collector, None
        if collector is not None:
            collector.stop()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        notify, self._notify = self._notify, None
        if notify is not None:
            notify.stop()
        http, self._http = self._http, None
        if http is not None:
            http.stop()
        gauge, self._gauge = self._gauge, None
        if gauge is not None:
            gauge.stop()


class _HttpServer:
    """uvicorn on a thread of its own, on a socket bound before it starts (so that a taken
    address is an error at once, naming the setting, rather than a log line in a thread)."""

    def __init__(self, app: object, settings: Settings) -> None:
        import uvicorn

        self.address = settings.http
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            log_level=settings.log_level.lower(),
            log_config=None,  # uvicorn's records go to termwatch's logging set-up
            access_log=False,
            server_header=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address.host, self.address.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"TERMWATCH_HTTP {self.address}: {exc.strerror}") from None
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="termwatch-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + HTTP_START_TIMEOUT_S
        # uvicorn runs its own event loop: "started" is a flag, there is nothing to wait on.
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on {self.address}")
            time.sleep(0.02)
        log.info("HTTP API and console on http://%s", self.address)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None


@contextmanager
def stop_requested() -> Iterator[threading.Event]:
    """An event set by the first SIGINT or SIGTERM; a second SIGINT raises KeyboardInterrupt."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run until SIGINT/SIGTERM: exit 0 after a clean stop, 1 when the collector stopped on
    an error (the database lost its schema, for one), 2 when the HTTP address is taken."""
    from rules.config import check_rules_file
    from termwatch.schema import require_schema

    settings.require_link_key()
    service = Service(settings, notify_on_event_time=args.notify_clock == "event")
    if problems := check_rules_file(settings.rules_file):
        for line in problems:
            print(f"termwatch: {line}", file=sys.stderr)
        return 2
    require_schema(service.dsn)
    with stop_requested() as stop:
        try:
            service.start()
        except OSError as exc:
            print(f"termwatch: {exc}", file=sys.stderr)
            return 2
        log.info("termwatch serve: running on http://%s; Ctrl-C stops it", settings.http)
        try:
            while not stop.wait(0.5) and not service.failed():
                pass
        finally:
            log.info("termwatch serve: stopping")
            error = service.error
            service.stop()
    if error is not None:
        print(f"termwatch: the collector stopped: {error!r}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from termwatch.demo_data.runner import run_demo

    return run_demo(args, settings)


def register(commands: Commands) -> None:
    """Add ``serve`` and ``demo``."""
    serve = commands.add(
        "serve",
        cmd_serve,
        "collector, rules, notifications and HTTP API in one process (Ctrl-C stops it)",
    )
    serve.add_argument(
        "--notify-clock",
        choices=("wall", "event"),
        default="wall",
        help="the clock of group_wait, repeats and escalation: 'wall' (a live fleet, default)"
        " or 'event', the terminals' own time (a simulation faster than real time)",
    )
    demo = commands.add(
        "demo",
        cmd_demo,
        "the whole system on this machine, with a simulated fleet: no services needed",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var/demo"),
        help="where the embedded database and broker keep their data (default: var/demo)",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=120.0,
        help="how fast the last two hours are replayed before the fleet runs in real time"
        " (simulated seconds per second, default 120)",
    )
    demo.add_argument(
        "--no-history", action="store_true", help="start in real time, without the replay"
    )
