"""What the benchmarks run on: a tuned Mosquitto on a free port, a scratch database.

Each benchmark measures termwatch as it is deployed, on servers of its own so that the
figures are not disturbed by (and do not disturb) anything else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from termwatch.schema import migrate
from termwatch.settings import MqttUrl

LOCAL_SERVER: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
MOSQUITTO_CONF: Final = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
# The collector acknowledges after each commit: lift the limits that would make the broker
# hold back or drop QoS 1 messages meanwhile.
max_inflight_messages 0
max_queued_messages 0
max_queued_bytes 0
log_dest stderr
log_type error
log_type warning
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Broker:
    url: MqttUrl
    pid: int


@contextlib.contextmanager
def mosquitto(workdir: Path, *, port: int | None = None) -> Iterator[Broker]:
    """A Mosquitto tuned for throughput on a local port (a free one by default), for the
    duration."""
    path = shutil.which("mosquitto")
    if path is None:
        raise RuntimeError("mosquitto is not installed (it is needed for the benchmark)")
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port), encoding="utf-8")
    proc = subprocess.Popen([path, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"mosquitto did not start: {err.strip()}")
            time.sleep(0.05)  # another process: nothing to wait on but its port
        yield Broker(MqttUrl("127.0.0.1", port), proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def scratch_database(server_dsn: str) -> Iterator[str]:
    """A new, migrated database on ``server_dsn``'s server, dropped afterwards."""
    name = f"termwatch_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_dsn)
    params["dbname"] = name
    dsn = make_conninfo(**params)  # type: ignore[arg-type]
    try:
        migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1-minute load average: other work on the machine shows in the figures."""
    return f"{os.getloadavg()[0]:.2f}"
