"""The event clock: a notion of "now" taken from the telemetry stream itself.

Detection runs on event time so that a simulated day at any speed opens the same incidents.
The clock is the newest event time the fleet agrees on:

* each batch moves it to the k-th newest terminal timestamp in that batch (k = 3, or fewer
  when fewer terminals spoke), so one terminal with a clock running ahead cannot drag the
  whole fleet's "now" forward;
* it never goes back;
* while messages flow, it is pure event time (deterministic, whatever the delivery speed);
* when the stream falls silent while the broker connection is up, it goes on at the rate it
  was last seen advancing (a real fleet-wide network loss is still detected), after a short
  grace period;
* while the collector's own broker connection is down it stands still, so losing the broker
  does not declare the fleet offline.

A region losing its network is detected because the other regions keep the clock moving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

WallClock = Callable[[], float]


class EventClock:
    """Thread-safe; ``observe`` from the writer, ``now`` from anywhere."""

    def __init__(
        self,
        *,
        quorum: int = 3,
        grace_s: float = 2.0,
        wall: WallClock = time.monotonic,
        start: datetime | None = None,
    ) -> None:
        self._quorum = quorum
        self._grace = grace_s
        self._wall = wall
        self._lock = threading.Lock()
        self._ts: datetime | None = start
        self._ts_wall = wall()
        self._rate = 1.0
        self._rate_anchor: tuple[float, datetime] | None = None
        self._connected = False
        self._frozen_at: datetime | None = None

    def observe(self, stamps: Iterable[tuple[str, datetime]]) -> datetime | None:
        """Take a batch of ``(tid, ts)`` pairs; return the clock after it (None if unset)."""
        newest: dict[str, datetime] = {}
        for tid, ts in stamps:
            if tid not in newest or ts > newest[tid]:
                newest[tid] = ts
        if not newest:
            return self.now()
        ordered = sorted(newest.values(), reverse=True)
        candidate = ordered[min(self._quorum, len(ordered)) - 1]
        wall = self._wall()
        with self._lock:
            current = self._now_locked(wall)
            if current is None or candidate > current:
                self._ts = candidate
            elif self._ts is not None and current > self._ts:
                self._ts = current  # keep the extrapolated reading; never go back
            self._ts_wall = wall
            self._update_rate(wall)
            return self._ts

    def _update_rate(self, wall: float) -> None:
        assert self._ts is not None
        if self._rate_anchor is None:
            self._rate_anchor = (wall, self._ts)
            return
        anchor_wall, anchor_ts = self._rate_anchor
        elapsed = wall - anchor_wall
        if elapsed >= 5.0:
            advanced = (self._ts - anchor_ts).total_seconds()
            if advanced > 0:
                self._rate = min(max(advanced / elapsed, 0.1), 10_000.0)
            self._rate_anchor = (wall, self._ts)

    def now(self) -> datetime | None:
        """The current event time, or None before the first message."""
        with self._lock:
            return self._now_locked(self._wall())

    def _now_locked(self, wall: float) -> datetime | None:
        if self._ts is None:
            return None
        if not self._connected:
            return self._frozen_at if self._frozen_at is not None else self._ts
        silent = wall - self._ts_wall - self._grace
        if silent <= 0:
            return self._ts
        return self._ts + timedelta(seconds=silent * self._rate)

    def set_connected(self, connected: bool) -> None:
        """Tell the clock whether the collector's broker connection is up."""
        with self._lock:
            wall = self._wall()
            if connected == self._connected:
                return
            if not connected:
                self._frozen_at = self._now_locked(wall)
            else:
                if self._frozen_at is not None:
                    self._ts = self._frozen_at
                self._frozen_at = None
                self._ts_wall = wall  # silence is counted from the reconnection
            self._connected = connected

    @property
    def rate(self) -> float:
        """Event seconds per wall second, as last measured (1.0 until measured)."""
        with self._lock:
            return self._rate
