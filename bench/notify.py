"""``termwatch bench notify``: how long from an incident opened to the webhook receiving it.

In a database of its own (created on the configured server, dropped afterwards) the
benchmark registers terminals, starts a :class:`notify.worker.NotifyWorker` on the wall
clock with one webhook target pointing at a local :class:`notify.receiver.Receiver`, and
opens incidents at a steady rate the way the rules engine does (the incident and its
``incident_log`` row in one transaction). The latency of an incident is from the commit of
that transaction to the arrival of the webhook request carrying it; ``group_wait`` (0 by
default) adds to it by design.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from notify.receiver import Receiver
from notify.worker import NotifyWorker
from termwatch.db import connect
from termwatch.schema import migrate
from termwatch.settings import Settings


@dataclass(frozen=True, slots=True)
class BenchResult:
    incidents: int
    delivered: int
    messages: int
    latencies_ms: list[float]

    @property
    def lost(self) -> int:
        return self.incidents - self.delivered

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in ms (nan when none)."""
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        rank = max(math.ceil(p / 100 * len(ordered)), 1)
        return ordered[rank - 1]

    def line(self) -> str:
        return (
            f"notify: {self.incidents} incidents, {self.delivered} delivered in"
            f" {self.messages} messages, {self.lost} lost, webhook latency"
            f" p50 {self.percentile(50):.0f} ms, p99 {self.percentile(99):.0f} ms,"
            f" max {max(self.latencies_ms, default=math.nan):.0f} ms"
        )


def run_bench(
    settings: Settings,
    *,
    incidents: int = 200,
    rate: float = 20.0,
    group_wait_s: int = 0,
    threads: int = 4,
    poll_s: float = 0.2,
) -> BenchResult:
    """Run the benchmark; raises ``psycopg.Error`` when the database cannot be prepared."""
    server = settings.require_database()
    params = conninfo_to_dict(server)
    name = f"tw_bench_notify_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params["dbname"] = name
    dsn = make_conninfo(**params)  # type: ignore[arg-type]
    try:
        migrate(dsn)
        return _measure(settings, dsn, incidents, rate, group_wait_s, threads, poll_s)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _measure(
    settings: Settings,
    dsn: str,
    incidents: int,
    rate: float,
    group_wait_s: int,
    threads: int,
    poll_s: float,
) -> BenchResult:
    opened: dict[int, float] = {}
    with (
        Receiver() as receiver,
        tempfile.TemporaryDirectory() as folder,
        connect(dsn, autocommit=True) as conn,
    ):
        routes_file = Path(folder) / "routes.yaml"
        routes_file.write_text(
            f'targets:\n  bench: {{webhook: "{receiver.url("/bench")}"}}\n'
            f"default:\n  targets: [bench]\n  group_wait: {group_wait_s}\n"
            "  repeat_interval: 0\n",
            encoding="utf-8",
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO terminals (tid, name, address, city, region, service_group)"
                " VALUES (%s, %s, 'Bench street 1', 'Bench', 'Bench', 'bench')",
                [(f"B-{n:05d}", f"Bench {n}") for n in range(incidents)],
            )
        worker = NotifyWorker(
            settings.with_(routes_file=routes_file), dsn, threads=threads, poll_s=poll_s
        )
        worker.start()
        try:
            start = time.monotonic()
            for n in range(incidents):
                pause = start + n / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the load, not waiting for a result
                incident_id = _open_incident(conn, f"B-{n:05d}")
                opened[incident_id] = time.monotonic()
            wanted = set(opened)
            receiver.wait_until(
                lambda got: wanted <= {i["id"] for r in got for i in r.body["incidents"]},
                timeout=30 + group_wait_s,
            )
        finally:
            worker.stop()
        latencies: list[float] = []
        requests = receiver.received("/bench")
        for request in requests:
            for item in request.body["incidents"]:
                committed = opened.pop(int(item["id"]), None)
                if committed is not None:
                    latencies.append((request.at - committed) * 1000)
    return BenchResult(
        incidents=incidents,
        delivered=len(latencies),
        messages=len(requests),
        latencies_ms=latencies,
    )


def _open_incident(conn: psycopg.Connection[dict[str, object]], tid: str) -> int:
    """Open an incident as the rules engine does: the row and its log entry in one commit."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO incidents (tid, kind, severity, status, title, rule, region,"
            " opened_at, last_fault_at) VALUES (%s, 'cash_acceptor_jam', 'critical', 'open',"
            " 'Cash acceptor jammed', 'cash_acceptor_jam', 'Bench', now(), now())"
            " RETURNING id",
            (tid,),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO incident_log (incident_id, at, action, actor)"
            " VALUES (%s, now(), 'opened', 'rules')",
            (row["id"],),
        )
    return int(str(row["id"]))


def main(args: argparse.Namespace, settings: Settings) -> int:
    if args.incidents < 1 or args.rate <= 0 or args.group_wait < 0 or args.threads < 1:
        print("--incidents, --rate and --threads must be positive", file=sys.stderr)
        return 2
    print(
        f"notify bench: {args.incidents} incidents at {args.rate:g}/s, group_wait"
        f" {args.group_wait}s, {args.threads} delivery threads, one local webhook",
        flush=True,
    )
    result = run_bench(
        settings,
        incidents=args.incidents,
        rate=args.rate,
        group_wait_s=args.group_wait,
        threads=args.threads,
    )
    print(result.line())
    return 0 if result.lost == 0 else 1
