"""``termwatch demo``: the whole system on one machine, with a simulated fleet.

1. Infrastructure: the database and broker from settings when given, else an embedded
   PostgreSQL and broker keeping their data under ``--data-dir`` (:mod:`termwatch.embedded`).
2. Schema migrated, the demo fleet's registry loaded (idempotent).
3. :class:`termwatch.run.Service`: collector, rules, complaint intake, notifications (to
   ``notifications.log`` in the data directory unless configured) and the HTTP API.
4. The simulated fleet (:mod:`termwatch.demo_data.fleet`): a fast replay of the recent
   past, then real time; a status line (:mod:`termwatch.demo_data.progress`) meanwhile.

API tokens and the PII key are generated on the first start and kept in ``demo.json`` in
the data directory, so they stay the same across restarts. Ctrl-C (or SIGTERM) stops
everything in order and exits 0; the next start continues on the same data.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from collector.clock import EventClock
from termwatch.demo_data.fleet import FleetSimulator, load_fleet
from termwatch.demo_data.progress import Progress, snapshot
from termwatch.demo_data.state import DemoSecrets
from termwatch.embedded import EmbeddedBroker, EmbeddedPostgres, EmbeddedServerError
from termwatch.run import Service, stop_requested
from termwatch.schema import migrate
from termwatch.settings import MqttUrl, Settings

log = logging.getLogger(__name__)

DATABASE = "termwatch"
SUBSCRIBE_TIMEOUT_S = 15.0
DEMO_CLOCK_GRACE_S = 86_400.0


class Infrastructure:
    """The configured database and broker, or embedded ones under ``data_dir``."""

    def __init__(self, settings: Settings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None

    def start(self, say: Progress) -> tuple[str, MqttUrl]:
        """Start what is not configured; return the database DSN and the broker URL."""
        dsn = self.settings.database_url
        if dsn is None:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            say.line(f"starting PostgreSQL in {self.postgres.pgdata}")
            self.postgres.start()
            self.postgres.ensure_database(DATABASE)
            dsn = self.postgres.dsn(DATABASE)
        url = self.settings.mqtt_url
        if url is None:
            self.broker = EmbeddedBroker(self.data_dir / "broker")
            say.line(f"starting the MQTT broker ({self.broker.kind}) in {self.broker.work_dir}")
            self.broker.start()
            url = self.broker.url
        return dsn, url

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()


def demo_clock() -> EventClock:
    """The demo collector's event clock: it does not run on through silences.

    Extrapolating a silence at the rate learnt from the last seconds of traffic would,
    after the fast replay (and after a restart, when retained messages with old timestamps
    arrive first), carry the clock minutes ahead of the fleet. The demo fleet is dense
    (a message about every second), so the clock moves on with the messages alone.
    """
    return EventClock(grace_s=DEMO_CLOCK_GRACE_S)


def shown_dsn(dsn: str) -> str:
    """``dsn`` as a URL a person can copy, without its password."""
    params = conninfo_to_dict(dsn)
    user = params.get("user") or "postgres"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"postgresql://{user}@{host}:{port}/{params.get('dbname') or user}"


def banner(
    settings: Settings, state: DemoSecrets, data_dir: Path, infra: Infrastructure, dsn: str
) -> str:
    """What the demo prints once it runs: where it is and how to reach each part."""
    database = shown_dsn(dsn)
    database += " (embedded)" if infra.postgres else " (TERMWATCH_DATABASE_URL)"
    url = infra.broker.url if infra.broker else settings.require_mqtt()
    broker = f"{url} ({infra.broker.kind}, embedded)" if infra.broker else f"{url}"
    incidents = f"{settings.base_url}/api/v1/incidents"
    lines = [
        "",
        f"  termwatch demo is running: {settings.base_url}/",
        "",
        f"  agent token     {state.agent}",
        f"  engineer token  {state.engineer}",
        "",
        f"  data            {data_dir}",
        f"  database        {database}",
        f"  broker          {broker}",
        f"  notifications   {settings.notify_log}",
        f"  logs            {data_dir / 'termwatch.log'}, {data_dir / 'simulator.log'}",
        f"  API             curl -H 'Authorization: Bearer {state.agent}' {incidents}",
        f"  CLI             TERMWATCH_DATABASE_URL={shown_dsn(dsn)} termwatch incidents list",
        "",
        "  Ctrl-C stops it; `termwatch demo` again continues on the same data.",
        "",
    ]
    return "\n".join(lines)


def log_to_file(path: Path, level: str) -> None:
    """Send log records to ``path``; the console keeps warnings and errors only (it shows
    the progress line)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setLevel(logging.WARNING)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setLevel(level)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; 0 after a clean stop, 1 when it could not start."""
    data_dir: Path = args.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    say = Progress()
    try:
        state = DemoSecrets.load_or_create(data_dir / "demo.json")
    except ValueError as exc:
        print(f"termwatch demo: {exc}", file=sys.stderr)
        return 1
    say.line(f"termwatch demo: data in {data_dir}")
    log_to_file(data_dir / "termwatch.log", settings.log_level)
    infra = Infrastructure(settings, data_dir)
    service: Service | None = None
    simulator: FleetSimulator | None = None
    with stop_requested() as stop:
        try:
            dsn, url = infra.start(say)
            settings = settings.with_(
                database_url=dsn,
                mqtt_url=url,
                api_tokens=settings.api_tokens + state.tokens(),
                pii_key=settings.pii_key or state.pii_key,
                link_key=settings.link_key or state.link_key,
                notify_log=settings.notify_log or data_dir / "notifications.log",
                client_id=settings.client_id or "termwatch-demo",
            )
            applied = migrate(dsn, settings)
            if applied:
                say.line(f"schema: applied {', '.join(applied)}")
            say.line(f"fleet: {load_fleet(dsn, data_dir)} terminals in the registry")
            service = Service(settings, clock_factory=demo_clock)
            service.start()
            if not service.wait_ready(SUBSCRIBE_TIMEOUT_S):
                say.line(
                    f"termwatch demo: warning: the collector is not subscribed to the broker"
                    f" after {SUBSCRIBE_TIMEOUT_S:.0f} s; see {data_dir / 'termwatch.log'}"
                )
            say.line(banner(settings, state, data_dir, infra, dsn))
            simulator = FleetSimulator(
                settings,
                dsn,
                data_dir,
                state,
                speed=args.speed,
                replay=not args.no_history,
            )
            simulator.start()
            while not service.failed():
                say.status(f"{snapshot(dsn, service.event_time())} | fleet: {simulator.phase}")
                if stop.wait(say.interval):
                    break
            else:
                say.done()
                print(f"termwatch demo: the collector stopped: {service.error!r}", file=sys.stderr)
                return 1
        except (EmbeddedServerError, OSError, psycopg.OperationalError) as exc:
            say.done()
            print(f"termwatch demo: {exc}", file=sys.stderr)
            return 1
        finally:
            say.done()
            if stop.is_set():
                say.line("termwatch demo: stopping")
            if simulator is not None:
                simulator.stop()
            if service is not None:
                service.stop()
            infra.stop()
    say.line("termwatch demo: stopped")
    return 0
