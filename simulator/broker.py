"""A Mosquitto of our own on a free local port, tuned for publishing benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from termwatch.settings import MqttUrl

#: No persistence, no logging beyond errors, large queues, $SYS figures every second.
CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
sys_interval 1
max_queued_messages 100000
max_inflight_messages 100
set_tcp_nodelay false
"""


class BrokerError(RuntimeError):
    """Mosquitto is not installed or did not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OwnMosquitto:
    """``with OwnMosquitto() as url:`` runs a private broker for the block."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="termwatch-bench-")
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = free_port()

    def __enter__(self) -> MqttUrl:
        binary = shutil.which("mosquitto")
        if binary is None:
            raise BrokerError("mosquitto is not installed; use --broker configured")
        conf = Path(self._dir.name) / "mosquitto.conf"
        conf.write_text(CONFIG.format(port=self.port), encoding="utf-8")
        self._proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise BrokerError(f"mosquitto exited at start: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return MqttUrl("127.0.0.1", self.port)
            except OSError:
                time.sleep(0.05)
        self._stop()
        raise BrokerError("mosquitto did not accept connections within 10 s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._dir.cleanup()
