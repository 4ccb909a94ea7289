"""``termwatch bench fleet``: ``termwatch serve`` with a national fleet's registry.

1. Creates a scratch database on the configured PostgreSQL server and registers
   ``--terminals`` terminals (200,000 by default), starts a Mosquitto of its own and
   ``termwatch serve`` as a child process, as deployed (collector, default rules, complaint
   intake, notifications and the HTTP API in one process).
2. *Small fleet*: heartbeats from 2,000 of the terminals at the large fleet's rate
   (``terminals / interval`` msg/s) for ``--seconds``: the CPU ``serve`` spends per message
   with a small fleet, for comparison.
3. *Large fleet*: heartbeats from every terminal, each every ``--interval`` seconds, for
   ``--seconds``, while one agent's client asks for terminal cards
   (``GET /api/v1/terminals/{tid}``, one request at a time, ``--probe-rate`` a second).
4. *Reconnect storm*: every terminal sends its status snapshot and ``online`` as it does
   when the whole fleet reconnects (``2 x terminals`` messages), as fast as the broker
   takes them; the card is probed meanwhile, and the time until ``serve`` has stored them
   all is measured.
5. Counts the incidents opened (all the traffic is healthy: every one is a false one) and
   reads ``serve``'s resident memory after the storm.

The last line printed is::

    fleet: <N> terminals, card p99 <A> ms under heartbeats, <B> ms in the storm; storm of
    <M> messages drained in <S> s; <F> false incidents; rss <R> MB after the storm;
    CPU <C> us/msg (<C0> us/msg with 2,000 terminals, <P> %)

(on one line). Exit status 1 when a request failed or a message was lost.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing as mp
import os
import secrets
import signal
import subprocess
import sys
import tempfile
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
    free_port,
    load_average,
    mosquitto,
    scratch_database,
)
from terminals import registry
from termwatch.db import connect
from termwatch.settings import MqttUrl, Settings

ROOT: Final = "benchfleet"
SMALL_FLEET: Final = 2_000
SLOTS_PER_S: Final = 10
CARD_TARGET_MS: Final = 20.0
DRAIN_TIMEOUT_S: Final = 600.0


@dataclass(slots=True)
class Probe:
    """Card request times (ms) and failures, from one keep-alive connection."""

    times: list[float]
    failures: int = 0

    def p99(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def tid(i: int) -> str:
    return f"F-{i:06d}"


def fleet(terminals: int) -> Iterator[registry.Terminal]:
    cities = (("Москва", "Москва"), ("Казань", "Татарстан"), ("Омск", "Омская область"))
    for i in range(terminals):
        city, region = cities[i % len(cities)]
        yield registry.Terminal(
            tid(i), f"Киоск {i}", f"ул. Ленина, {i % 250 + 1}", city, region,
            55.0 + (i % 1000) / 1000, 37.0 + (i % 997) / 1000, "ТК-19 Cash", f"grp-{i % 50}",
        )  # fmt: skip


def heartbeat(i: int, seq: int, now: datetime, interval_s: int) -> tuple[bytes, bytes]:
    t = tid(i)
    payload = (
        f'{{"v":1,"tid":"{t}","id":"{t}-h{seq}","ts":"{now.isoformat()}","seq":{seq},'
        f'"interval_s":{interval_s},"uptime_s":{86_400 + seq * interval_s},"app":"kiosk 2.3.1"}}'
    )
    return f"{ROOT}/{t}/heartbeat".encode(), payload.encode()


def snapshot(i: int, seq: int, now: datetime) -> tuple[bytes, bytes]:
    t = tid(i)
    payload = (
        f'{{"v":1,"tid":"{t}","id":"{t}-s{seq}","ts":"{now.isoformat()}","seq":{seq},'
        '"devices":{"printer":{"device":"online","paper":"full","media":"notPresent",'
        '"toner":"full"},"cashAcceptor":{"device":"online","acceptor":"ok",'
        '"banknoteReader":"ok","shutter":"closed","transport":"ok","stacker":{"status":"ok",'
        '"replenishment":"ok","count":120,"capacity":600}},"cardReader":{"device":"noDevice"}}}'
    )
    return f"{ROOT}/{t}/status".encode(), payload.encode()


def _heartbeats(
    url: MqttUrl, terminals: int, rate: float, seconds: float, interval_s: int, sent: Any
) -> None:
    """Publisher process: heartbeats round-robin over ``terminals`` at ``rate`` msg/s."""
    from collector.rawpub import RawPublisher

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    publisher = RawPublisher(url.host, url.port, f"bench-fleet-hb-{os.getpid()}")
    per_slot = max(1, round(rate / SLOTS_PER_S))
    started = due = time.monotonic()
    n = 0
    try:
        while time.monotonic() - started < seconds:
            now = datetime.now(UTC)
            batch = [
                heartbeat((n + k) % terminals, (n + k) // terminals + 1, now, interval_s)
                for k in range(per_slot)
            ]
            n += per_slot
            sent.value += publisher.publish_all(batch, window=per_slot)
            due += 1 / SLOTS_PER_S
            time.sleep(max(0.0, due - time.monotonic()))  # pacing to the rate
    finally:
        publisher.close()


def _storm(url: MqttUrl, first: int, last: int, sent: Any) -> None:
    """Publisher process: a status snapshot and ``online`` from terminals [first, last)."""
    from collector.rawpub import RawPublisher

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    publisher = RawPublisher(url.host, url.port, f"bench-fleet-storm-{os.getpid()}")
    now = datetime.now(UTC)
    try:
        for start in range(first, last, 5_000):
            batch: list[tuple[bytes, bytes]] = []
            for i in range(start, min(start + 5_000, last)):
                batch.append(snapshot(i, 1_000_000, now))
                batch.append((f"{ROOT}/{tid(i)}/availability".encode(), b"online"))
            sent.value += publisher.publish_all(batch, window=5_000)
    finally:
        publisher.close()


class Serve:
    """``termwatch serve`` as a child process, as deployed."""

    def __init__(self, settings: Settings, dsn: str, url: MqttUrl, port: int, log: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        self.port = port
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
        env.update(
            TERMWATCH_DATABASE_URL=dsn,
            TERMWATCH_MQTT_URL=f"mqtt://{url.host}:{url.port}",
            TERMWATCH_TOPIC_ROOT=ROOT,
            TERMWATCH_CLIENT_ID="termwatch-bench-fleet",
            TERMWATCH_HTTP=f"127.0.0.1:{port}",
            TERMWATCH_API_TOKENS=f"agent:{self.token}",
            TERMWATCH_PII_KEY=secrets.token_hex(16),
            TERMWATCH_LINK_KEY=secrets.token_hex(32),
            TERMWATCH_LOG_LEVEL="WARNING",
            TERMWATCH_BATCH_SIZE=str(settings.batch_size),
            TERMWATCH_FLUSH_MS=str(settings.flush_ms),
        )
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "termwatch.cli", "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, b""

    def wait_up(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.get("/healthz")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"termwatch serve did not start; see {self._log.name}")
            time.sleep(0.2)  # another process: nothing to wait on but its port

    def counted(self, *kinds: str) -> int:
        """Messages of ``kinds`` that ``serve`` has stored (or found already stored)."""
        from prometheus_client.parser import text_string_to_metric_families

        status, body = self.get("/metrics")
        if status != 200:
            return -1
        total = 0.0
        for family in text_string_to_metric_families(body.decode()):
            if family.name != "termwatch_messages":
                continue
            for sample in family.samples:
                labels = sample.labels
                if labels.get("kind") in kinds and labels.get("outcome") != "rejected":
                    total += sample.value
        return int(total)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _incidents(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM incidents").fetchone()
    return int(row[0]) if row else 0


def _probe(serve: Serve, terminals: int, rate: float, until: Any, probe: Probe) -> None:
    """Cards of terminals spread over the fleet at ``rate`` a second until ``until()``."""
    step = max(1, terminals // 997)
    n = 0
    due = time.monotonic()
    while not until():
        path = f"/api/v1/terminals/{tid((n * step) % terminals)}"
        started = time.perf_counter()
        status, _ = serve.get(path)
        probe.times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            probe.failures += 1
        n += 1
        due += 1 / rate
        time.sleep(max(0.0, due - time.monotonic()))  # pacing to the probe rate


def _heartbeat_phase(
    ctx: Any, serve: Serve, url: MqttUrl, terminals: int, args: argparse.Namespace, rate: float
) -> tuple[Probe, float, int]:
    """Heartbeats from ``terminals`` at ``rate`` for ``args.seconds``; the card probe, the
    CPU seconds of ``serve`` and the messages sent."""
    sent = ctx.Value("q", 0, lock=False)
    proc = ctx.Process(
        target=_heartbeats, args=(url, terminals, rate, args.seconds, args.interval, sent)
    )
    cpu_before = cpu_seconds(serve.proc.pid)
    proc.start()
    probe = Probe([])
    _probe(serve, args.terminals, args.probe_rate, lambda: not proc.is_alive(), probe)
    proc.join()
    return probe, cpu_seconds(serve.proc.pid) - cpu_before, int(sent.value)


def _wait_counted(serve: Serve, kinds: tuple[str, ...], want: int, timeout_s: float) -> float:
    """Seconds until ``serve`` has stored ``want`` messages of ``kinds`` (polled: another
    process stores them)."""
    started = time.monotonic()
    while (have := serve.counted(*kinds)) < want:
        if time.monotonic() - started > timeout_s or serve.proc.poll() is not None:
            raise RuntimeError(f"{have} of {want} {'/'.join(kinds)} stored in {timeout_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def main(args: argparse.Namespace, settings: Settings) -> int:
    if args.terminals < SMALL_FLEET or args.seconds <= 0 or args.interval < 10:
        print(
            f"--terminals must be at least {SMALL_FLEET}, --seconds positive, --interval >= 10",
            file=sys.stderr,
        )
        return 2
    server = args.database_server or settings.database_url or LOCAL_SERVER
    rate = args.terminals / args.interval
    print(f"machine: {os.cpu_count()} cores, load average {load_average()} at start", flush=True)
    ctx = mp.get_context("spawn")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tw-bench-fleet-")))
        broker = stack.enter_context(mosquitto(tmp))
        dsn = stack.enter_context(scratch_database(server))
        with connect(dsn) as conn:
            registry.load(conn, fleet(args.terminals))
        print(f"registry: {args.terminals:,} terminals", flush=True)
        serve = Serve(settings, dsn, broker.url, free_port(), tmp / "serve.log")
        stack.callback(serve.stop)
        serve.wait_up(120)

        print(f"-- {SMALL_FLEET:,} terminals, heartbeats at {rate:,.0f} msg/s", flush=True)
        small, small_cpu, small_sent = _heartbeat_phase(ctx, serve, broker.url, SMALL_FLEET,
                                                        args, rate)  # fmt: skip
        _wait_counted(serve, ("heartbeat",), small_sent, 120)
        small_us = small_cpu / max(small_sent, 1) * 1e6
        print(f"{small_sent:,} heartbeats; CPU {small_us:.0f} us/msg; card p99"
              f" {small.p99():.1f} ms", flush=True)  # fmt: skip

        print(f"-- {args.terminals:,} terminals, heartbeats at {rate:,.0f} msg/s", flush=True)
        large, large_cpu, large_sent = _heartbeat_phase(ctx, serve, broker.url, args.terminals,
                                                        args, rate)  # fmt: skip
        _wait_counted(serve, ("heartbeat",), small_sent + large_sent, 120)
        large_us = large_cpu / max(large_sent, 1) * 1e6
        print(f"{large_sent:,} heartbeats; CPU {large_us:.0f} us/msg; card p99"
              f" {large.p99():.1f} ms ({len(large.times)} cards)", flush=True)  # fmt: skip

        before = serve.counted("status", "availability")
        storm_n = 2 * args.terminals
        print(f"-- reconnect storm: {storm_n:,} messages", flush=True)
        sent = [ctx.Value("q", 0, lock=False) for _ in range(2)]
        half = args.terminals // 2
        pubs = [
            ctx.Process(target=_storm, args=(broker.url, 0, half, sent[0])),
            ctx.Process(target=_storm, args=(broker.url, half, args.terminals, sent[1])),
        ]
        storm = Probe([])
        started = time.monotonic()
        for proc in pubs:
            proc.start()
        want = before + storm_n
        done = {"at": 0.0}

        def drained() -> bool:
            if done["at"]:
                return True
            if serve.counted("status", "availability") >= want:
                done["at"] = time.monotonic()
                return True
            if time.monotonic() - started > DRAIN_TIMEOUT_S:
                raise RuntimeError(f"the storm was not stored in {DRAIN_TIMEOUT_S:.0f} s")
            return False

        checked = {"at": 0.0}

        def storm_over() -> bool:  # the store is counted at most twice a second
            if time.monotonic() - checked["at"] < 0.5:
                return False
            checked["at"] = time.monotonic()
            return drained()

        _probe(serve, args.terminals, args.probe_rate, storm_over, storm)
        drain_s = done["at"] - started
        for proc in pubs:
            proc.join(60)
        storm_sent = sum(int(v.value) for v in sent)
        print(f"{storm_sent:,} messages drained in {drain_s:.1f} s; card p99"
              f" {storm.p99():.1f} ms ({len(storm.times)} cards)", flush=True)  # fmt: skip
        incidents = _incidents(dsn)
        rss = serve.rss_mb()
        lost = (
            small_sent
            + large_sent
            + storm_sent
            - serve.counted("heartbeat", "status", "availability")
        )
    print(f"load average {load_average()} at the end", flush=True)
    change = (large_us / small_us - 1) * 100 if small_us else 0.0
    failures = small.failures + large.failures + storm.failures
    if failures:
        print(f"{failures} card requests failed", flush=True)
    if lost:
        print(f"{lost} messages lost", flush=True)
    print(
        f"fleet: {args.terminals} terminals, card p99 {large.p99():.1f} ms under heartbeats,"
        f" {storm.p99():.1f} ms in the storm; storm of {storm_sent} messages drained in"
        f" {drain_s:.1f} s; {incidents} false incidents; rss {rss:.0f} MB after the"
        f" storm; CPU {large_us:.0f} us/msg ({small_us:.0f} us/msg with {SMALL_FLEET}"
        f" terminals, {change:+.0f} %)",
        flush=True,
    )
    return 1 if failures or lost else 0
