"""The demo's fleet: its registry, and ``termwatch simulate`` run phase after phase.

A fresh demo replays the last two hours at high speed (the gap since the last heartbeat on
a restart), timed to end as the wall clock reaches it, then goes on in real time from where
the replay ended, so event time runs on without a jump.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import IO
from urllib.parse import quote

from termwatch.db import connect
from termwatch.demo_data.state import DemoSecrets
from termwatch.settings import MqttUrl, Settings

log = logging.getLogger(__name__)

HISTORY = timedelta(hours=2)  # replayed on a fresh start
LIVE_PHASE = timedelta(hours=24)
MIN_REPLAY = timedelta(minutes=2)  # a smaller gap is left as it is
SIM_RETRY_S = 30.0  # after a simulator run failed
SIM_STOP_S = 10.0


def scenario_path() -> Path:
    return Path(str(resources.files("termwatch.demo_data") / "demo.yaml"))


def load_fleet(dsn: str, data_dir: Path) -> int:
    """Write the demo fleet's registry CSV to ``data_dir`` and import it as
    ``termwatch terminals import`` does (insert or update); return its size."""
    from simulator.fleet import build_fleet, save_registry
    from simulator.scenario import load_scenario
    from terminals import registry

    csv_path = data_dir / "registry.csv"
    save_registry(build_fleet(load_scenario(str(scenario_path()))), csv_path)
    terminals = registry.read(csv_path)
    with connect(dsn) as conn:
        registry.load(conn, terminals)
    return len(terminals)


def continuing_scenario(data_dir: Path) -> Path:
    """The demo scenario without its scripted faults, for a phase that continues the fleet
    (the live phase after the replay, a replay after a restart): those faults belong to the
    demo's first two hours, and playing them again would open what a continuous run never
    had. Natural wear goes on."""
    text = scenario_path().read_text(encoding="utf-8")
    head, found, _ = text.partition("\nfaults:\n")
    path = data_dir / "demo-continued.yaml"
    path.write_text(head + "\n" if found else text, encoding="utf-8")
    return path


def write_levels(dsn: str, path: Path) -> int:
    """Each terminal's paper and stacker as termwatch last saw them, as ``simulate --resume``
    reads them; return how many terminals."""
    levels: dict[str, dict[str, str]] = {}
    with connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tid, device, field, value FROM device_state"
            " WHERE (device, field) IN (('printer', 'paper'),"
            " ('cashAcceptor', 'stacker.replenishment'))"
        ).fetchall()
    for row in rows:
        name = "paper" if row["field"] == "paper" else "stacker"
        levels.setdefault(row["tid"], {})[name] = row["value"]
    path.write_text(json.dumps(levels, sort_keys=True), encoding="utf-8")
    return len(levels)


def mqtt_url_text(url: MqttUrl) -> str:
    """``url`` as a ``TERMWATCH_MQTT_URL`` value, credentials included."""
    auth = ""
    if url.username:
        auth = quote(url.username, safe="")
        if url.password:
            auth += ":" + quote(url.password, safe="")
        auth += "@"
    return f"{'mqtts' if url.tls else 'mqtt'}://{auth}{url.host}:{url.port}"


@dataclass(frozen=True, slots=True)
class Phase:
    """One run of the simulator: ``duration`` of simulated time from ``start`` at ``speed``."""

    kind: str  # "replay" | "live"
    start: datetime
    duration: timedelta
    speed: float
    #: It goes on from a fleet termwatch has already seen: no scripted faults, and the
    #: terminals start at their last known supplies.
    continuing: bool = True

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    def describe(self) -> str:
        if self.kind == "replay":
            behind = self.duration.total_seconds() * (self.speed - 1) / self.speed
            return f"replaying the last {behind / 60:.0f} min at {self.speed:g}x"
        return "real time"


def first_phase(now: datetime, last: datetime | None, speed: float, replay: bool) -> Phase:
    """Replay from ``last`` (at most ``HISTORY`` back) to ``now``, or go on in real time.

    A replay at ``speed`` of a window that starts ``L`` before ``now`` and lasts
    ``L * speed / (speed - 1)`` ends exactly when the wall clock reaches its end: its
    timestamps are never in the future.
    """
    if replay and (last is None or now - last >= MIN_REPLAY):
        start = max(last or now - HISTORY, now - HISTORY)
        behind = now - start
        return Phase("replay", start, behind * speed / (speed - 1), speed, last is not None)
    return Phase("live", now, LIVE_PHASE, 1.0, last is not None)


class FleetSimulator:
    """Runs ``termwatch simulate`` phases one after another, in child processes, from a
    thread of its own: a replay of the recent past, then real time from where the replay
    ended, phase after phase, so event time runs on without a jump.

    """

    def __init__(
        self,
        settings: Settings,
        dsn: str,
        data_dir: Path,
        state: DemoSecrets,
        *,
        speed: float,
        replay: bool,
    ) -> None:
        self.settings = settings
        self.dsn = dsn
        self.data_dir = data_dir
        self.state = state
        self.speed = max(speed, 2.0)
        self.replay = replay
        self.phase = "starting"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="termwatch-demo-fleet", daemon=True)
        (data_dir / "truth").mkdir(exist_ok=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the running phase (SIGINT, then kill after ``SIM_STOP_S``) and the thread."""
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(SIM_STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._thread.join(SIM_STOP_S + 5)

    def _run(self) -> None:
        with (self.data_dir / "simulator.log").open("ab") as out:
            phase = self._first()
            while not self._stop.is_set():
                code = self._run_phase(phase, out)
                if self._stop.is_set():
                    return
                if code != 0:
                    log.error("the fleet simulator exited with %s; see simulator.log", code)
                    self.phase = f"simulator failed ({code}), retrying in {SIM_RETRY_S:.0f} s"
                    if self._stop.wait(SIM_RETRY_S):
                        return
                    phase = self._first()
                    continue
                phase = Phase("live", phase.end, LIVE_PHASE, 1.0)

    def _first(self) -> Phase:
        now = datetime.now(UTC).replace(microsecond=0)
        with connect(self.dsn, autocommit=True) as conn:
            # Heartbeats carry the terminals' own time (availability is stamped on arrival).
            row = conn.execute("SELECT max(last_heartbeat_at) AS last FROM terminal_state")
            found = row.fetchone()
        last = found["last"] if found else None
        return first_phase(now, last, self.speed, self.replay)

    def _run_phase(self, phase: Phase, out: IO[bytes]) -> int | None:
        """Run one phase to its end; its exit code, or None when stopped meanwhile."""
        self.state.runs += 1
        self.state.save(self.data_dir / "demo.json")
        truth = self.data_dir / "truth" / f"{self.state.runs:04d}-{phase.kind}.jsonl"
        scenario = scenario_path()
        resume: list[str] = []
        if phase.continuing:
            scenario = continuing_scenario(self.data_dir)
            levels = self.data_dir / "levels.json"
            if write_levels(self.dsn, levels):
                resume = ["--resume", str(levels)]
        command = [
            sys.executable, "-m", "termwatch.cli", "simulate",
            "--scenario", str(scenario),
            "--seed", str(8080 + self.state.runs),
            "--start", phase.start.isoformat(),
            "--duration", f"{int(phase.duration.total_seconds())}s",
            "--speed", f"{phase.speed:g}",
            "--truth", str(truth),
            "--quiet",
            *resume,
        ]  # fmt: skip
        env = {
            **os.environ,
            "TERMWATCH_MQTT_URL": mqtt_url_text(self.settings.require_mqtt()),
            "TERMWATCH_TOPIC_ROOT": self.settings.topic_root,
            "TERMWATCH_LOG_LEVEL": "WARNING",
        }
        out.write(f"\n== {datetime.now(UTC).isoformat()} {' '.join(command[3:])}\n".encode())
        out.flush()
        with self._lock:
            if self._stop.is_set():
                return None
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops it in order
            )
            proc = self._proc
        self.phase = phase.describe()
        log.info("fleet simulator: %s (pid %d)", self.phase, proc.pid)
        code = proc.wait()
        with self._lock:
            self._proc = None
        return None if self._stop.is_set() else code
