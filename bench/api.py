"""``termwatch bench api``: terminal card and console search latency under ingest load.

1. Creates a fresh database on the configured PostgreSQL server (the local one when none is
   configured) and fills it with COPY (:mod:`bench.fleet`): 100,000 registered
   terminals with current state, and 30 days of history for the first 1,000 of them.
2. Starts, each in a process of its own: a Mosquitto on a free port, the collector
   (:class:`collector.service.Collector`) on it, a publisher sending the collector's
   benchmark traffic mix for the 1,000 terminals at a steady 5,000 msg/s (QoS 1), and the
   HTTP API and console (:func:`termwatch.web.app.create_app` under uvicorn). With
   ``--inside-serve``, the collector (with the default rules) and the API run in one
   process instead, as ``termwatch serve`` runs them.
3. After a warm-up, one client (an agent's browser: one connection, one request at a time)
   asks for terminal cards (``GET /api/v1/terminals/{tid}``: three in four for terminals
   with history, half of those with an amount-and-time filter) and runs console searches
   (``GET /?q=``: address fragments, city and street, ids and id prefixes), and the
   latencies are measured at the client.
4. Drops the database.

The last line printed is::

    api: terminal card p99 <X> ms (target 20), console search p99 <Y> ms (target 50),
    ingest <N> msg/s committed (target 5000), <T> terminals, <H> with <D> days of history
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing as mp
import os
import random
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any, Final

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.fleet import CITIES, FleetSize, Terminal, fleet, load
from bench.servers import LOCAL_SERVER, free_port, load_average, mosquitto, scratch_database
from termwatch.db import connect
from termwatch.schema import migrate
from termwatch.settings import ApiToken, HostPort, Settings

ROOT: Final = "benchapi"
CARD_TARGET_MS: Final = 20.0
SEARCH_TARGET_MS: Final = 50.0
SLOTS_PER_S: Final = 10


@dataclass(frozen=True, slots=True)
class Latencies:
    """Client-side request times in milliseconds."""

    times: list[float]

    def pct(self, p: float) -> float:
        ordered = sorted(self.times)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def summary(self) -> str:
        return (
            f"{len(self.times)} requests, p50 {self.pct(50):.1f} ms, p95 {self.pct(95):.1f} ms,"
            f" p99 {self.pct(99):.1f} ms, max {max(self.times, default=0):.1f} ms"
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the benchmark; 0 when every request succeeded (the figures say whether the
    targets were met), 1 otherwise."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    size = FleetSize(
        terminals=args.terminals, history=args.history, days=args.days, ops_per_day=args.ops_per_day
    )
    server = args.database_server or settings.database_url or LOCAL_SERVER
    now = datetime.now(UTC)
    agent_token = secrets.token_urlsafe(24)
    print(f"machine: {os.cpu_count()} cores, load average {load_average()} at start", flush=True)
    ctx = mp.get_context("spawn")
    database = (
        kept_database(server, args.keep_database)
        if args.keep_database
        else scratch_database(server)
    )
    with (
        tempfile.TemporaryDirectory(prefix="termwatch-bench-api-") as tmp,
        mosquitto(Path(tmp)) as broker,
        database as dsn,
    ):
        kept = " (kept)" if args.keep_database else " (dropped at the end)"
        print(f"database {conninfo_to_dict(dsn)['dbname']}{kept}", flush=True)
        with connect(dsn, autocommit=True) as conn:
            _fill(conn, size, now)
        port = free_port()
        bench = settings.with_(
            database_url=dsn,
            mqtt_url=broker.url,
            topic_root=ROOT,
            client_id="termwatch-bench-api",
            share_group=None,
            http=HostPort("127.0.0.1", port),
            api_tokens=(ApiToken("agent", agent_token),),
            log_level="WARNING",
        )
        stop = ctx.Event()
        committed = ctx.Value("q", 0)
        published = ctx.Value("q", 0)
        if args.inside_serve:
            bench = bench.with_(link_key=secrets.token_hex(32), pii_key=secrets.token_hex(16))
            servers = [
                ctx.Process(target=_serve_all, args=(bench, committed, stop), name="bench-serve")
            ]
        else:
            servers = [
                ctx.Process(target=_serve, args=(bench,), name="bench-api-server"),
                ctx.Process(target=_collect, args=(bench, committed, stop), name="bench-collector"),
            ]
        procs = [
            *servers,
            ctx.Process(
                target=_publish,
                args=(bench, size.history, args.rate, published, stop),
                name="bench-publisher",
            ),
        ]
        for proc in procs:
            proc.start()
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base, procs)
            print(f"ingesting at {args.rate:,} msg/s; warming up {args.warmup_s:.0f} s", flush=True)
            stop.wait(args.warmup_s)  # the warm-up is a span of load, not a wait for an event
            result = _measure(base, agent_token, fleet(size), size, now, args.requests,
                              committed, published)  # fmt: skip
        finally:
            stop.set()
            _stop(procs)
    print(f"load average {load_average()} at the end", flush=True)
    card, search, rate, failures = result
    print(f"GET /api/v1/terminals/{{tid}}: {card.summary()}", flush=True)
    print(f"console search GET /?q=: {search.summary()}", flush=True)
    if failures:
        print(f"{failures} requests failed", flush=True)
    if rate < 0.9 * args.rate:
        print(
            f"the collector committed {rate:,.0f} msg/s, below the {args.rate:,} msg/s asked"
            " (the machine is busy): the figures are under less write load than the target",
            flush=True,
        )
    where = ", API inside serve" if args.inside_serve else ""
    print(
        f"api{where}: terminal card p99 {card.pct(99):.1f} ms (target {CARD_TARGET_MS:.0f}),"
        f" console search p99 {search.pct(99):.1f} ms (target {SEARCH_TARGET_MS:.0f}),"
        f" ingest {rate:,.0f} msg/s committed (target {args.rate}),"
        f" {size.terminals} terminals, {size.history} with {size.days} days of history",
        flush=True,
    )
    return 1 if failures else 0


@contextlib.contextmanager
def kept_database(server_dsn: str, name: str) -> Iterator[str]:
    """Database ``name`` on the server, created and migrated when missing, never dropped."""
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_dsn)
    params["dbname"] = name
    dsn = make_conninfo(**params)  # type: ignore[arg-type]
    migrate(dsn)
    yield dsn


def _fill(conn: psycopg.Connection[Any], size: FleetSize, now: datetime) -> None:
    """Load the fleet, unless this (kept) database already holds one of this size."""
    row = conn.execute("SELECT count(*) AS n FROM terminals").fetchone()
    present = int(row["n"]) if row else 0
    if present == size.terminals:
        print(f"reusing the {present:,} terminals already loaded", flush=True)
        return
    if present:
        raise RuntimeError(f"the database holds {present} terminals, not {size.terminals}")
    started = time.perf_counter()
    print(
        f"loading {size.terminals:,} terminals, {size.days} days of history for"
        f" {size.history:,} of them",
        flush=True,
    )
    counts = load(conn, size, now, log=lambda line: print(line, flush=True))
    print(
        f"loaded {sum(counts.values()):,} rows in {time.perf_counter() - started:.0f} s", flush=True
    )


def _serve(settings: Settings) -> None:
    """The API server process: what ``termwatch api`` runs."""
    import uvicorn

    from termwatch.web.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.http.host,
        port=settings.http.port,
        log_level="warning",
        access_log=False,
    )


def _serve_all(settings: Settings, committed: Synchronized[int], stop: Any) -> None:
    """What ``termwatch serve`` runs, in one process: the collector with the default rules,
    the notification worker and the HTTP API; until ``stop`` or SIGTERM."""
    import signal as signals

    from termwatch.run import Service

    signals.signal(signals.SIGTERM, lambda signum, frame: stop.set())
    service = Service(settings)
    service.start()
    try:
        while not stop.wait(0.05):
            collector = service._collector
            committed.value = collector.processed if collector is not None else 0
    finally:
        service.stop()


def _collect(settings: Settings, committed: Synchronized[int], stop: Any) -> None:
    """The collector process: store everything from the broker until ``stop``."""
    from collector.service import Collector

    collector = Collector(settings)
    collector.start()
    try:
        while not stop.wait(0.05):
            committed.value = collector.processed
    finally:
        collector.stop()


def _publish(
    settings: Settings, terminals: int, rate: int, published: Synchronized[int], stop: Any
) -> None:
    """The publisher process: the benchmark mix for ``terminals`` at ``rate`` msg/s, QoS 1,
    in ten slots a second."""
    from collector.rawpub import RawPublisher
    from collector.traffic import FleetTraffic

    url = settings.require_mqtt()
    stream = FleetTraffic(ROOT, terminals, datetime.now(UTC), prefix="T", seed=11)
    publisher = RawPublisher(url.host, url.port, "termwatch-bench-api-publisher")
    per_slot = max(1, rate // SLOTS_PER_S)
    due = time.monotonic()
    try:
        while not stop.is_set():
            batch = [(topic.encode(), payload) for topic, payload in islice(stream, per_slot)]
            sent = publisher.publish_all(batch, window=per_slot)
            with published.get_lock():
                published.value += sent
            due += 1 / SLOTS_PER_S
            stop.wait(max(0.0, due - time.monotonic()))  # pacing to the rate
    finally:
        publisher.close()


def _wait_until_up(base: str, procs: list[Any]) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=5) as client:
        while True:
            try:
                if client.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or any(not p.is_alive() for p in procs):
                raise RuntimeError("the API server or the ingest did not start")
            time.sleep(0.1)  # another process: nothing to wait on but its port


def _stop(procs: list[Any]) -> None:
    """Stop the server (SIGTERM: uvicorn shuts down gracefully) and wait for the ingest
    processes, which end on the ``stop`` event."""
    server, *ingest = procs
    server.terminate()
    for proc in [server, *ingest]:
        proc.join(15)
        if proc.is_alive():
            proc.terminate()
            proc.join(15)
        if proc.is_alive():
            proc.kill()
            proc.join()


def search_queries(terminals: list[Terminal], count: int, seed: int = 5) -> list[str]:
    """What agents type: address fragments, city and street, ids and id prefixes, venues."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        t = rng.choice(terminals)
        kind = i % 5
        if kind == 0:
            out.append(f"{t.street} {t.house}")
        elif kind == 1:
            out.append(f"{t.city} {t.street} {t.house}")
        elif kind == 2:
            out.append(t.tid)
        elif kind == 3:
            out.append(t.tid[:6].lower())
        else:
            out.append(f"{rng.choice([c[0] for c in CITIES])} {t.street}")
    return out


def _measure(
    base: str,
    token: str,
    terminals: list[Terminal],
    size: FleetSize,
    now: datetime,
    requests: int,
    committed: Synchronized[int],
    published: Synchronized[int],
) -> tuple[Latencies, Latencies, float, int]:
    rng = random.Random(3)
    card_times: list[float] = []
    search_times: list[float] = []
    failures = 0
    queries = search_queries(terminals, requests)
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
        login = client.post("/login", data={"token": token, "name": "bench", "next": "/"})
        if login.status_code != 303:
            raise RuntimeError(f"console login failed: {login.status_code}")
        headers = {"Authorization": f"Bearer {token}"}
        first_commit, first = committed.value, time.perf_counter()
        for i in range(requests):
            tid = rng.choice(terminals[: size.history] if i % 4 else terminals).tid
            params: dict[str, str] = {}
            if i % 4 and i % 2:
                at = now - timedelta(minutes=rng.randrange(size.days * 1440))
                params["amount_minor"] = str(rng.randrange(100, 1_500_000, 100))
                params["at"] = at.isoformat()
            failures += _timed(
                card_times, client, f"/api/v1/terminals/{tid}", params=params, headers=headers
            )
            failures += _timed(search_times, client, "/", params={"q": queries[i]})
        elapsed = time.perf_counter() - first
        rate = (committed.value - first_commit) / elapsed
    print(f"published {published.value:,} messages in all", flush=True)
    return Latencies(card_times), Latencies(search_times), rate, failures


def _timed(times: list[float], client: httpx.Client, path: str, **kwargs: Any) -> int:
    """Time one GET; return 1 when it did not succeed (200, or the search's 303)."""
    started = time.perf_counter()
    response = client.get(path, **kwargs)
    times.append((time.perf_counter() - started) * 1000)
    return 0 if response.status_code in (200, 303) else 1
