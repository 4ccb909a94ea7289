"""A one-line progress report on stderr while a simulation runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from simulator.publisher import PublishStats
from simulator.timefmt import rfc3339


class ProgressLine:
    """Prints simulated time, share done, message rate, connections, faults and complaints."""

    def __init__(
        self,
        start: int,
        end: int,
        terminals: int,
        faults: Callable[[], int],
        out: TextIO = sys.stderr,
    ) -> None:
        self.start = start
        self.end = end
        self.terminals = terminals
        self.faults = faults
        self.out = out
        self._last = (0.0, 0)

    def __call__(self, stats: PublishStats) -> None:
        wall, sent = self._last
        rate = (stats.published - sent) / (stats.wall_s - wall) if stats.wall_s > wall else 0.0
        self._last = (stats.wall_s, stats.published)
        done = (stats.sim_now - self.start) / max(1, self.end - self.start)
        print(
            f"sim {rfc3339(stats.sim_now)[:19]}Z ({done:4.0%})  msgs {stats.published}"
            f" ({rate:,.0f}/s)  connected {stats.connected}/{self.terminals}"
            f"  faults {self.faults()}  complaints {stats.complaints}"
            f"  unacked {stats.unacked}  lag {max(0.0, stats.lag_s):.1f}s",
            file=self.out,
            flush=True,
        )
