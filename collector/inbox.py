"""The bounded hand-over from paho's network thread to the writer.

The network thread only appends; the writer takes whole batches. When the inbox is full,
:meth:`Inbox.put` blocks: paho stops reading its socket, TCP fills up and the broker holds
the messages. Nothing is ever dropped here. (With MQTT v5 the broker sends at most the
collector's Receive Maximum of unacknowledged QoS 1 messages, which is below the default
bound, so in practice only QoS 0 traffic can fill it, while the database is away.)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from collector.decode import Decoded, Rejected


@dataclass(frozen=True, slots=True)
class Received:
    """One message as it came off the wire: its decoding and what acknowledging it needs.

    ``generation`` counts the broker connections; an acknowledgement is sent only on the
    connection that delivered the message. ``payload`` is kept for the rare message that
    decodes but that the database refuses, so that it can be kept as rejected.
    """

    result: Decoded | Rejected
    mid: int
    qos: int
    generation: int
    payload: bytes | bytearray = b""


class Inbox:
    """A FIFO of :class:`Received` bounded to ``maxsize``; one writer, any number of producers."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._items: deque[Received] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._first_at = 0.0  # monotonic time the oldest waiting item arrived
        self._want = 1  # the writer is woken when this many items wait
        self._closed = False
        #: Monotonic arrival time of the oldest item of the last batch taken.
        self.taken_at: float | None = None

    def put(self, item: Received) -> None:
        """Append ``item``, waiting while the inbox is full. Items put after close are kept."""
        with self._lock:
            while len(self._items) >= self.maxsize and not self._closed:
                self._not_full.wait()
            if not self._items:
                self._first_at = time.monotonic()
            self._items.append(item)
            if len(self._items) >= self._want:
                self._not_empty.notify()

    def take(self, max_items: int, linger_s: float, timeout_s: float) -> list[Received]:
        """The next batch: up to ``max_items``, returned once that many wait or the oldest has
        waited ``linger_s``. Waits at most ``timeout_s`` for a first item; [] when none came.
        After :meth:`close`, returns what is left at once.
        """
        with self._lock:
            if not self._items and not self._closed:
                self._want = 1
                self._not_empty.wait(timeout_s)
            if not self._items:
                return []
            flush_at = self._first_at + linger_s
            self._want = max_items
            while len(self._items) < max_items and not self._closed:
                remaining = flush_at - time.monotonic()
                if remaining <= 0:
                    break
                self._not_empty.wait(remaining)
            self._want = 1
            self.taken_at = self._first_at
            count = min(max_items, len(self._items))
            batch = [self._items.popleft() for _ in range(count)]
            if self._items:
                self._first_at = time.monotonic()
            self._not_full.notify_all()
            return batch

    def close(self) -> None:
        """Wake everyone; :meth:`take` stops waiting for more items and ``put`` stops blocking."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def oldest_at(self) -> float | None:
        """Monotonic time the oldest waiting item arrived; None when empty."""
        return self._first_at if self._items else None

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
