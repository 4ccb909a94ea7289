"""Reading a child process's output line by line while it runs."""

from __future__ import annotations

import queue
import threading
import time
from typing import IO

import pytest


class Lines:
    """Every line a child writes to ``stream``, collected by a thread as it comes."""

    def __init__(self, stream: IO[str]) -> None:
        self.output: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stream = stream
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            self.output.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, deadline_s: float) -> None:
        """Return at the first new line holding ``text``; fail with the output if the child
        closes the stream first or ``deadline_s`` passes."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {text!r} in {deadline_s:.0f} s:\n{''.join(self.output)}")
            if line is None:
                pytest.fail(f"the child exited:\n{''.join(self.output)}")
            if text in line:
                return
