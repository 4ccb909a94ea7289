"""``termwatch bench ingest``: how many messages a second the collector commits.

Starts its own Mosquitto (on a free port, with in-flight and queue limits lifted and
persistence off), creates a fresh database on the configured PostgreSQL server (the local
one when none is configured) and drops it afterwards, runs a collector in a process of its
own, and publishes a realistic mix of contract messages (heartbeats, operations, events,
status) from several publisher processes, as fast as the collector commits them: the
publishers keep at most ``--window`` messages ahead of the commits.

The collector runs as ``serve`` and ``collector`` run it: with the default rules and the
complaint intake as its after-commit hooks (``--rules on``). ``--rules both`` (the default)
first measures it with no hooks at all on a broker and database of their own, and prints
that figure beside the deployed one; ``--rules off`` measures only that.

The last line printed is::

    ingest: <N> msg/s committed, <L> lost, commit p99 <X> ms, rss <M> MB, rules <on|off>
            [; rules off <K> msg/s]

(one line; the part in brackets with ``--rules both``).

``N`` is the messages committed divided by the time from the first publish to the last
commit; ``L`` is the messages the broker acknowledged to the publishers minus the rows
found in the database; ``X`` is the 99th percentile of the time to write and commit one
batch; ``M`` is the collector process's peak resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import psycopg

from bench.servers import (
    LOCAL_SERVER,
    cpu_seconds,
    load_average,
    mosquitto,
    scratch_database,
)
from termwatch.settings import MqttUrl, Settings

ROOT: Final = "bench"

_interrupted = threading.Event()


class Interrupted(Exception):
    """SIGTERM arrived during the run."""


@dataclass(frozen=True, slots=True)
class Result:
    published: int
    stored: int
    seconds: float
    commit_p99_ms: float
    rss_mb: float
    batches: int
    #: CPU seconds spent while publishing, by process: collector, postgres, mosquitto,
    #: publishers.
    cpu_s: dict[str, float]

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds > 0 else 0.0

    def line(self, rules: bool) -> str:
        return (
            f"ingest: {self.rate:.0f} msg/s committed, {self.published - self.stored} lost,"
            f" commit p99 {self.commit_p99_ms:.1f} ms, rss {self.rss_mb:.0f} MB,"
            f" rules {'on' if rules else 'off'}"
        )


def _collector_main(
    settings: Settings, rules: bool, counts: Any, ready: Any, stop: Any, results: Any
) -> None:
    """The collector process: run until ``stop``, then report commit times and memory.
    It writes the messages committed so far to ``counts[0]``. With ``rules``, the default
    rules and the complaint intake run as its hooks, as in ``serve``."""
    from collector.service import Collector
    from rules.engine import RuleEngine
    from rules.intake import ComplaintIntake

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop

    engine = RuleEngine(settings, settings.require_database()) if rules else None
    collector = Collector(
        settings,
        hooks=[engine] if engine else [],
        complaints=ComplaintIntake(settings) if rules else None,
    )
    collector.start()
    if not collector.wait_ready(30):
        results.put(("error", "the collector did not connect to the benchmark broker"))
        return
    ready.set()
    while not stop.wait(0.01):
        counts[0] = collector.processed
    counts[0] = collector.processed
    collector.stop()
    if engine is not None:
        engine.close()
    times = sorted(collector.writer.commit_seconds)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] if times else 0.0
    results.put(("ok", p99, _peak_rss_mb(), len(times)))


def _peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _publisher_main(
    index: int,
    url: MqttUrl,
    count: int,
    terminals: int,
    window: int,
    counts: Any,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """A publisher process: build its share of the traffic, then send it when told. It
    adds what the broker acknowledged to ``counts[index + 1]``; ``counts[0]`` is the
    collector's."""
    from collector.rawpub import RawPublisher
    from collector.traffic import FleetTraffic

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop

    stream = FleetTraffic(ROOT, terminals, datetime.now(UTC), prefix=f"B{index}", seed=index + 1)
    messages = [(topic.encode(), payload) for topic, payload in _take(stream, count)]
    publisher = RawPublisher(url.host, url.port, f"bench-publisher-{index}")
    ready.release()
    go.wait()

    def may_send(n: int) -> bool:
        ahead: int = sum(counts[1:]) - counts[0]
        return ahead < window

    def on_acked(n: int) -> None:
        counts[index + 1] += n  # this process is the only writer of its slot

    before = os.times()
    publisher.publish_all(messages, window=5000, may_send=may_send, on_acked=on_acked)
    publisher.close()
    after = os.times()
    results.put(after.user + after.system - before.user - before.system)


def _take(stream: Iterator[tuple[str, bytes]], count: int) -> list[tuple[str, bytes]]:
    return [next(stream) for _ in range(count)]


def run(
    server_dsn: str,
    *,
    messages: int,
    publishers: int,
    terminals: int,
    window: int,
    settings: Settings,
    rules: bool = True,
    log: Any = print,
) -> Result:
    """Run the benchmark once; see the module docstring."""
    ctx = mp.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="termwatch-bench-") as tmp,
        mosquitto(Path(tmp)) as broker,
        scratch_database(server_dsn) as dsn,
    ):
        bench_settings = settings.with_(
            database_url=dsn,
            mqtt_url=broker.url,
            topic_root=ROOT,
            client_id="termwatch-bench",
            share_group=None,
        )
        # Lock-free counters (one writer each), so that a killed process cannot leave a lock
        # held: [committed, published by publisher 0, by publisher 1, ...].
        counts = ctx.RawArray("q", publishers + 1)
        collector_ready = ctx.Event()
        stop = ctx.Event()
        results = ctx.Queue()
        publisher_cpu = ctx.Queue()
        collector = ctx.Process(
            target=_collector_main,
            args=(bench_settings, rules, counts, collector_ready, stop, results),
            name="bench-collector",
        )
        collector.start()
        pubs_ready = ctx.Semaphore(0)
        go = ctx.Event()
        share = [
            messages // publishers + (1 if i < messages % publishers else 0)
            for i in range(publishers)
        ]
        procs = [
            ctx.Process(
                target=_publisher_main,
                args=(
                    i,
                    broker.url,
                    share[i],
                    terminals,
                    window,
                    counts,
                    pubs_ready,
                    go,
                    publisher_cpu,
                ),
                name=f"bench-publisher-{i}",
            )
            for i in range(publishers)
        ]
        for proc in procs:
            proc.start()
        try:
            log(
                f"preparing {messages} messages from {terminals * publishers} terminals"
                f" in {publishers} publisher processes"
            )
            if not _wait_ready(lambda: pubs_ready.acquire(timeout=0.2), len(procs), 300):
                raise RuntimeError("the publishers did not get ready")
            if not _wait_ready(lambda: collector_ready.wait(0.2), 1, 60):
                raise RuntimeError(_collector_error(results) or "the collector did not start")
            assert collector.pid is not None
            watched = {
                "collector": [collector.pid],
                "postgres": _backends(dsn),
                "mosquitto": [broker.pid],
            }
            cpu_before = {name: sum(map(cpu_seconds, pids)) for name, pids in watched.items()}
            log("publishing")
            started = time.perf_counter()
            go.set()
            _wait_for_commits(procs, counts, log)
            elapsed = time.perf_counter() - started
            cpu = {
                name: sum(map(cpu_seconds, pids)) - cpu_before[name]
                for name, pids in watched.items()
            }
            cpu["publishers"] = sum(publisher_cpu.get(timeout=30) for _ in procs)
            for proc in procs:
                proc.join(30)
            stop.set()
            report = results.get(timeout=60)
            if report[0] != "ok":
                raise RuntimeError(report[1])
            _, p99, rss, batches = report
            collector.join(30)
            return Result(
                published=sum(counts[1:]),
                stored=_stored(dsn),
                seconds=elapsed,
                commit_p99_ms=p99 * 1000,
                rss_mb=rss,
                batches=batches,
                cpu_s=cpu,
            )
        finally:
            stop.set()
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            for proc in [*procs, collector]:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join()


def _wait_ready(poll: Any, count: int, timeout_s: float) -> bool:
    """Call ``poll()`` (which waits a little) until it has said yes ``count`` times; False
    after ``timeout_s``. Raises :class:`Interrupted` on SIGINT or SIGTERM."""
    deadline = time.monotonic() + timeout_s
    ready = 0
    while ready < count:
        if _interrupted.is_set():
            raise Interrupted
        if poll():
            ready += 1
        elif time.monotonic() > deadline:
            return False
    return True


def _wait_for_commits(procs: list[Any], counts: Any, log: Any) -> None:
    """Until every publisher is done and the collector has committed all they published.
    Raises :class:`Interrupted` on SIGINT or SIGTERM."""
    last, last_change = 0, time.monotonic()
    while True:
        if _interrupted.is_set():
            raise Interrupted
        done = counts[0]
        if all(not p.is_alive() for p in procs) and done >= sum(counts[1:]):
            return
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > 30:
            log("no progress for 30 s: stopping")
            return
        time.sleep(0.005)  # other processes: poll their shared counters


def _backends(dsn: str) -> list[int]:
    """Process ids of the other sessions on the benchmark database (the collector's)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def _collector_error(results: Any) -> str | None:
    with contextlib.suppress(Exception):
        report = results.get(timeout=0.1)
        if report[0] == "error":
            return str(report[1])
    return None


def _stored(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM status_snapshots) + (SELECT count(*) FROM events)"
            " + (SELECT count(*) FROM operations) + (SELECT count(*) FROM heartbeats)"
        ).fetchone()
    assert row is not None
    return int(row[0])


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Run the benchmark; exit status 1 when messages were lost, 130 when interrupted."""
    # Ctrl-C or SIGTERM ends the run early; the broker, processes and database are still
    # removed. (An exception raised from a signal handler could leave a lock half-taken.)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: _interrupted.set())
    server = args.database_server or settings.database_url or LOCAL_SERVER
    print(f"machine: {os.cpu_count()} cores, load average {load_average()} at start", flush=True)
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.rules]
    results: dict[bool, Result] = {}
    for rules in modes:
        print(f"-- rules {'on (default rules, complaint intake)' if rules else 'off'}", flush=True)
        try:
            result = run(
                server,
                messages=args.messages,
                publishers=args.publishers,
                terminals=args.terminals,
                window=args.window,
                settings=settings,
                rules=rules,
            )
        except Interrupted:
            print("termwatch: bench ingest interrupted", file=sys.stderr)
            return 130
        _report(result, rules)
        results[rules] = result
    last = modes[-1]
    line = results[last].line(last)
    if last and False in results:
        line += f"; rules off {results[False].rate:.0f} msg/s"
    print(line, flush=True)
    lost = any(r.published != r.stored for r in results.values())
    return 1 if lost else 0


def _report(result: Result, rules: bool) -> None:
    per_message = {k: v / max(result.stored, 1) * 1e6 for k, v in result.cpu_s.items()}
    total = sum(per_message.values())
    cores = os.cpu_count() or 1
    print(
        f"{result.stored} of {result.published} messages committed in {result.seconds:.1f} s"
        f" in {result.batches} batches; load average {load_average()} at the end",
        flush=True,
    )
    print(
        "CPU per message: "
        + ", ".join(f"{name} {us:.0f} us" for name, us in per_message.items())
        + f" (total {total:.0f} us: at most about {cores * 1e6 / max(total, 1):,.0f} msg/s"
        f" on {cores} cores doing nothing else)",
        flush=True,
    )
    print(result.line(rules), flush=True)
