"""The event clock: a notion of "now" taken from the telemetry stream itself.

Detection runs on event time so that a simulated day at any speed opens the same incidents.
The clock is the newest event time the fleet agrees on:

* it keeps the newest offset-corrected timestamp of each terminal heard in the last
  ``window`` messages (across batches, so single-message batches count too) and moves to an
  upper quantile of them: the k-th newest, where k is a quarter of those terminals plus one
  (at least 3, or all of them when fewer spoke). Terminals with clocks running ahead, up to
  a quarter of those heard, cannot drag the fleet's "now" forward; terminals that fell
  silent leave the window as the others go on talking, so a region's network loss does not
  hold the clock back;
* each terminal's clock offset is measured against the fleet clock (not wall time: a replay
  runs behind wall time) as the median of its last samples, and applied only when those
  samples are consistently off by more than ``tolerance_s`` in the same direction;
* it never goes back;
* while messages flow, it is pure event time (deterministic, whatever the delivery speed);
* when the stream falls silent while the broker connection is up, it goes on at the rate it
  was last seen advancing (a real fleet-wide network loss is still detected), after a short
  grace period;
* while the collector's own broker connection is down it stands still, so losing the broker
  does not declare the fleet offline;
* once the link is probed (:meth:`EventClock.prove`), the run-on goes no further than the
  last proof that the link is alive, so a black-holed link stops the clock within a probe
  period, whatever the replay speed.

A region losing its network is detected because the other regions keep the clock moving.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter, deque
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
        window: int = 256,
        outlier_share: float = 0.25,
        samples: int = 3,
        tolerance_s: float = 60.0,
    ) -> None:
        if window < 1 or samples < 1 or not 0.0 <= outlier_share < 1.0 or tolerance_s < 0:
            raise ValueError("EventClock: window and samples >= 1, 0 <= outlier_share < 1")
        self._quorum = quorum
        self._window = window
        self._outlier_share = outlier_share
        self._samples = samples
        self._tolerance = tolerance_s
        self._recent: deque[str] = deque()
        self._recent_count: Counter[str] = Counter()
        self._newest: dict[str, datetime] = {}
        self._offset_samples: dict[str, deque[float]] = {}
        self._offsets: dict[str, float] = {}
        self._cleared: set[str] = set()  # offsets dropped since take_cleared
        self._grace = grace_s
        self._wall = wall
        self._lock = threading.Lock()
        self._ts: datetime | None = start
        self._ts_wall = wall()
        self._rate = 1.0
        self._rate_anchor: tuple[float, datetime] | None = None
        self._connected = False
        self._frozen_at: datetime | None = None
        self._proven: float | None = None

    def observe(self, stamps: Iterable[tuple[str, datetime]]) -> datetime | None:
        """Take a batch of ``(tid, ts)`` pairs; return the clock after it (None if unset)."""
        batch: dict[str, datetime] = {}
        for tid, ts in stamps:
            if tid not in batch or ts > batch[tid]:
                batch[tid] = ts
        if not batch:
            return self.now()
        wall = self._wall()
        with self._lock:
            current = self._now_locked(wall)
            for tid, ts in batch.items():
                if current is not None:
                    self._sample_offset(tid, (ts - current).total_seconds())
                corrected = ts - timedelta(seconds=self._offsets.get(tid, 0.0))
                self._remember(tid, corrected)
            candidate = self._candidate()
            if current is None or candidate > current:
                self._ts = candidate
            elif self._ts is not None and current > self._ts:
                self._ts = current  # keep the extrapolated reading; never go back
            self._ts_wall = wall
            self._update_rate(wall)
            return self._ts

    def _sample_offset(self, tid: str, sample: float) -> None:
        got = self._offset_samples.setdefault(tid, deque(maxlen=self._samples))
        got.append(sample)
        off = self._offsets.get(tid, 0.0)
        # a sample is judged against the offset in force: small deviations keep it
        if len(got) == got.maxlen:
            residual = [s - off for s in got]
            if all(r > self._tolerance for r in residual) or all(
                r < -self._tolerance for r in residual
            ):
                median = statistics.median(got)
                if abs(median) > self._tolerance:
                    self._offsets[tid] = median
                else:
                    self._clear(tid)
            elif all(abs(s) <= self._tolerance for s in got):
                self._clear(tid)

    def _clear(self, tid: str) -> None:
        if self._offsets.pop(tid, None) is not None:
            self._cleared.add(tid)

    def _remember(self, tid: str, ts: datetime) -> None:
        self._recent.append(tid)
        self._recent_count[tid] += 1
        previous = self._newest.get(tid)
        if previous is None or ts > previous:
            self._newest[tid] = ts
        while len(self._recent) > self._window:
            gone = self._recent.popleft()
            self._recent_count[gone] -= 1
            if self._recent_count[gone] <= 0:
                del self._recent_count[gone]
                del self._newest[gone]

    def _candidate(self) -> datetime:
        ordered = sorted(self._newest.values(), reverse=True)
        n = len(ordered)
        rank = max(min(self._quorum, n), int(n * self._outlier_share) + 1)
        return ordered[rank - 1]

    def offset(self, tid: str) -> timedelta:
        """The terminal's clock offset against the fleet (zero until consistently off)."""
        with self._lock:
            return timedelta(seconds=self._offsets.get(tid, 0.0))

    def take_cleared(self) -> list[str]:
        """The terminals whose offset was dropped (their clock is right again) since the
        last call."""
        with self._lock:
            cleared, self._cleared = sorted(self._cleared), set()
            return cleared

    def offsets(self) -> dict[str, timedelta]:
        """Every terminal's non-zero clock offset."""
        with self._lock:
            return {tid: timedelta(seconds=s) for tid, s in self._offsets.items()}

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
        until = wall if self._proven is None else min(wall, max(self._proven, self._ts_wall))
        silent = until - self._ts_wall - self._grace
        if silent <= 0:
            return self._ts
        return self._ts + timedelta(seconds=silent * self._rate)

    def prove(self) -> None:
        """The broker link was just proven alive (a probe came back). Once called, a silent
        stream's run-on goes no further than the last proof: a link that dies silently stops
        the clock at once, before any liveness deadline it could not vouch for."""
        with self._lock:
            self._proven = self._wall()

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
