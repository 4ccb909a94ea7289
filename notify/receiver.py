"""A local HTTP receiver for notifications: the far end of a webhook, on this machine.

Used by ``termwatch bench notify`` to time delivery, and by the tests as a real server
(webhook and Apprise ``json://`` targets pointed at it). It records every POST with its
arrival time and answers as told per path: a status code, or a delay before answering.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any  # the decoded JSON, or the raw text when it is not JSON
    at: float  # time.monotonic() on arrival


@dataclass(slots=True)
class _Behaviour:
    status: int = 200
    delay: float = 0.0


@dataclass(slots=True)
class _State:
    received: list[Received] = field(default_factory=list)
    behaviour: dict[str, _Behaviour] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)


class Receiver:
    """A running receiver; ``url(path)`` is where to point a target. Close it when done."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        state = _State()
        self._state = state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    body: Any = json.loads(raw)
                except json.JSONDecodeError:
                    body = raw
                with state.changed:
                    behaviour = state.behaviour.get(self.path.split("?")[0], _Behaviour())
                if behaviour.delay:
                    time.sleep(behaviour.delay)  # a slow target, on purpose
                with state.changed:
                    state.received.append(
                        Received(self.path, dict(self.headers.items()), body, time.monotonic())
                    )
                    state.changed.notify_all()
                self.send_response(behaviour.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the receiver's record is its log

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="notify-receiver",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def respond(self, path: str, *, status: int = 200, delay: float = 0.0) -> None:
        """Answer POSTs to ``path`` with ``status`` after ``delay`` seconds from now on."""
        with self._state.changed:
            self._state.behaviour[path] = _Behaviour(status, delay)

    def received(self, path: str | None = None) -> list[Received]:
        """What arrived (at ``path`` only, if given), oldest first; recorded only if answered."""
        with self._state.changed:
            return [r for r in self._state.received if path is None or r.path.startswith(path)]

    def wait_for(self, count: int, *, path: str | None = None, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` requests (to ``path``) arrived; False on timeout."""
        return self.wait_until(
            lambda got: sum(1 for r in got if path is None or r.path.startswith(path)) >= count,
            timeout=timeout,
        )

    def wait_until(
        self, condition: Callable[[list[Received]], bool], *, timeout: float = 10.0
    ) -> bool:
        """Wait until ``condition(everything received)`` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._state.changed:
            while True:
                if condition(list(self._state.received)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._state.changed.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
