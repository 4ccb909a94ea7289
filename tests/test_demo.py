"""``termwatch serve`` and ``termwatch demo`` as child processes, as people run them.

``serve``: against the test database and broker, a fault published by a terminal becomes an
incident in the API, SIGTERM stops it with status 0, a taken HTTP address is refused.

``demo``, as a newcomer runs it: no database or broker configured (embedded ones start),
the console and API up, a first incident from the simulated fleet, a clean stop on Ctrl-C,
and a second start on the same data. That test runs about 20-30 s because it starts
PostgreSQL and a broker twice and waits for the simulated fleet's first fault; it is the
one test of the whole system in one process.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from termwatch.embedded import free_port
from termwatch.settings import Settings
from tests.test_two_collectors import drop_session

START_DEADLINE_S = 60.0  # the promise: console up within a minute
INCIDENT_DEADLINE_S = 60.0
STOP_DEADLINE_S = 60.0


class Program:
    """A ``termwatch`` child process whose output (stdout and stderr) is read line by line."""

    def __init__(self, args: list[str], port: int, **env_vars: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
        env.update(
            TERMWATCH_HTTP=f"127.0.0.1:{port}",
            TERMWATCH_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(env_vars)
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "termwatch.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_line(self, pattern: str, deadline_s: float) -> re.Match[str]:
        """The first output line matching ``pattern``; fails with the output so far."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None:
                pytest.fail(f"exited ({self.proc.wait()}):\n{''.join(self.output)}")
            if match := re.search(pattern, line):
                return match
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} in {deadline_s:.0f} s:\n{''.join(self.output)}")

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"})

    def poll(self, path: str, token: str, deadline_s: float) -> list[dict[str, Any]]:
        """GET ``path`` until it answers a non-empty JSON list (another process: we poll)."""
        deadline = time.monotonic() + deadline_s
        while True:
            response = self.get(path, token)
            assert response.status_code == 200, response.text
            body = response.json()
            if body:
                assert isinstance(body, list)
                return body
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{path} stayed empty:\n{''.join(self.output)}")
            time.sleep(0.5)

    def interrupt(self, signum: int = signal.SIGINT) -> int:
        """Ctrl-C (or ``signum``); returns the exit code."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"did not stop on signal {signum}:\n{''.join(self.output)}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "demo"
    yield path
    # Whatever happened, leave no server running on the directory.
    from termwatch.embedded import EmbeddedBroker, EmbeddedPostgres

    EmbeddedPostgres(path / "postgres").stop()
    EmbeddedBroker(path / "broker").stop_leftover()


@pytest.mark.slow
def test_the_demo_shows_an_incident_stops_on_ctrl_c_and_restarts_on_its_data(
    data_dir: Path,
) -> None:
    port = free_port()
    demo = Program(["demo", "--data-dir", str(data_dir)], port)
    try:
        started = time.monotonic()
        url = demo.wait_for_line(r"termwatch demo is running: (\S+)", START_DEADLINE_S)
        agent = demo.wait_for_line(r"agent token\s+(\S+)", 5)[1]
        engineer = demo.wait_for_line(r"engineer token\s+(\S+)", 5)[1]
        database = demo.wait_for_line(r"database\s+(postgresql://\S+) \(embedded\)", 5)[1]
        broker = demo.wait_for_line(r"broker\s+(mqtt://127\.0\.0\.1:\d+) \(", 5)[1]
        assert url[1] == f"http://127.0.0.1:{port}/"
        assert re.fullmatch(r"postgresql://postgres@127\.0\.0\.1:\d+/termwatch", database)
        with psycopg.connect(database, connect_timeout=5) as conn:  # a person's psql works
            assert conn.execute("SELECT count(*) FROM terminals").fetchone() == (48,)
        assert time.monotonic() - started < START_DEADLINE_S

        incidents = demo.poll("/api/v1/incidents", agent, INCIDENT_DEADLINE_S)
        first = incidents[0]
        assert first["status"] in ("open", "acknowledged", "resolved")
        terminal = demo.get(f"/api/v1/terminals/{first['tid']}", agent)
        assert terminal.status_code == 200, terminal.text
        assert demo.get("/api/v1/incidents", "not-a-token").status_code == 401
        acked = httpx.post(
            f"{demo.base}/api/v1/incidents/{first['id']}/ack",
            headers={"Authorization": f"Bearer {engineer}"},
            json={"note": "on my way"},
        )
        assert acked.status_code in (200, 409), acked.text  # 409: it resolved meanwhile

        assert demo.interrupt() == 0
        assert "termwatch demo: stopped" in "".join(demo.output)
    finally:
        demo.kill()
    assert not (data_dir / "postgres" / "pgdata" / "postmaster.pid").exists()
    assert not (data_dir / "broker" / "broker.pid").exists()

    again = Program(["demo", "--data-dir", str(data_dir)], port)
    try:
        again.wait_for_line(r"termwatch demo is running", START_DEADLINE_S)
        assert again.wait_for_line(r"agent token\s+(\S+)", 5)[1] == agent
        # The same addresses as the first run: tools pointed at the demo keep working.
        assert again.wait_for_line(r"database\s+(\S+)", 5)[1] == database
        assert again.wait_for_line(r"broker\s+(\S+)", 5)[1] == broker
        kept = again.poll(f"/api/v1/incidents?tid={first['tid']}", agent, 10)
        assert first["id"] in {i["id"] for i in kept}
        assert again.interrupt() == 0
    finally:
        again.kill()


def serve(settings: Settings, port: int, *args: str, **env_vars: str) -> Program:
    assert settings.database_url is not None
    assert settings.mqtt_url is not None
    return Program(
        ["serve", *args],
        port,
        TERMWATCH_DATABASE_URL=settings.database_url,
        TERMWATCH_MQTT_URL=f"mqtt://{settings.mqtt_url.host}:{settings.mqtt_url.port}",
        TERMWATCH_TOPIC_ROOT=settings.topic_root,
        TERMWATCH_CLIENT_ID=f"{settings.topic_root}-serve",
        TERMWATCH_API_TOKENS="agent:agent-token-1,engineer:engineer-token-1",
        TERMWATCH_PII_KEY=settings.pii_key,
        TERMWATCH_LINK_KEY="test-link-key-0123456789abcdef0123456789",
        TERMWATCH_LOG_LEVEL="INFO",
        **env_vars,
    )


def test_serve_turns_a_published_fault_into_an_incident_and_stops_on_sigterm(
    settings: Settings,
) -> None:
    program = serve(settings, free_port())
    try:
        program.wait_for_line(r"subscribed to", START_DEADLINE_S)
        tid = "T-SERVE1"
        ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        payload = (
            f'{{"v":1,"tid":"{tid}","id":"{tid}-1","ts":"{ts.isoformat()}","seq":1,'
            '"devices":{"printer":{"device":"hardwareError"}}}'
        )
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        assert settings.mqtt_url is not None
        client.connect(settings.mqtt_url.host, settings.mqtt_url.port)
        client.loop_start()
        try:
            info = client.publish(f"{settings.topic_root}/{tid}/status", payload, qos=1)
            info.wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()

        incidents = program.poll(f"/api/v1/incidents?tid={tid}", "agent-token-1", 30)
        assert [(i["tid"], i["kind"]) for i in incidents] == [(tid, "printer_fault")]
        metrics = httpx.get(f"{program.base}/metrics").text
        assert 'termwatch_messages_total{kind="status",outcome="stored"} 1.0' in metrics
        assert program.interrupt(signal.SIGTERM) == 0
    finally:
        program.kill()
        drop_session(settings, f"{settings.topic_root}-serve")


def test_serve_refuses_an_http_address_in_use_naming_the_setting(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        program = serve(settings, port)
        try:
            assert program.proc.wait(START_DEADLINE_S) == 2
        finally:
            program.kill()
    program.wait_for_line(rf"TERMWATCH_HTTP 127\.0\.0\.1:{port}", 5)


NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def test_a_fresh_demo_replays_two_hours_and_ends_on_the_wall_clock() -> None:
    from termwatch.demo_data.fleet import first_phase

    phase = first_phase(NOW, None, speed=120.0, replay=True)
    assert phase.kind == "replay"
    assert phase.start == NOW - timedelta(hours=2)
    # The replay takes duration/speed of wall time and ends as the wall clock reaches it.
    wall_end = NOW + phase.duration / phase.speed
    assert abs((phase.end - wall_end).total_seconds()) < 1e-6


def test_a_restart_replays_only_the_gap_and_a_short_gap_goes_straight_to_real_time() -> None:
    from termwatch.demo_data.fleet import first_phase

    gap = first_phase(NOW, NOW - timedelta(minutes=30), speed=120.0, replay=True)
    assert (gap.kind, gap.start) == ("replay", NOW - timedelta(minutes=30))
    days_later = first_phase(NOW, NOW - timedelta(days=3), speed=120.0, replay=True)
    assert days_later.start == NOW - timedelta(hours=2)
    short = first_phase(NOW, NOW - timedelta(seconds=30), speed=120.0, replay=True)
    assert (short.kind, short.start, short.speed) == ("live", NOW, 1.0)
    assert first_phase(NOW, None, speed=120.0, replay=False).kind == "live"


def test_serve_on_the_event_clock_pages_when_the_terminals_time_has_passed_group_wait(
    settings: Settings, tmp_path: Path
) -> None:
    """An hour-old fault, then a message two minutes later by the terminal's clock: the
    default 30 s ``group_wait`` has passed in event time, so the page is written at once
    (on the wall clock it would wait 30 s)."""
    notify_log = tmp_path / "notify.jsonl"
    program = serve(
        settings, free_port(), "--notify-clock", "event", TERMWATCH_NOTIFY_LOG=str(notify_log)
    )
    assert settings.mqtt_url is not None
    tid = "T-EVCLOCK"
    fault_ts = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    try:
        program.wait_for_line(r"subscribed to", START_DEADLINE_S)
        client.connect(settings.mqtt_url.host, settings.mqtt_url.port)
        client.loop_start()

        def publish(kind: str, n: int, ts: datetime, body: str) -> None:
            payload = f'{{"v":1,"tid":"{tid}","id":"{tid}-{n}","ts":"{ts.isoformat()}",{body}}}'
            client.publish(f"{settings.topic_root}/{tid}/{kind}", payload, qos=1).wait_for_publish(
                10
            )

        publish("status", 1, fault_ts, '"devices":{"printer":{"device":"hardwareError"}}')
        incidents = program.poll(f"/api/v1/incidents?tid={tid}", "agent-token-1", 30)
        assert [i["kind"] for i in incidents] == ["printer_fault"]
        assert not notify_log.exists() or tid not in notify_log.read_text()

        publish("heartbeat", 2, fault_ts + timedelta(minutes=2), '"interval_s":60')
        deadline = time.monotonic() + 10
        while not (notify_log.exists() and tid in notify_log.read_text()):
            assert time.monotonic() < deadline, "no page in 10 s: not on the event clock"
            time.sleep(0.2)
        assert program.interrupt(signal.SIGTERM) == 0
    finally:
        client.disconnect()
        client.loop_stop()
        program.kill()
        drop_session(settings, f"{settings.topic_root}-serve")
