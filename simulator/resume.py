"""Going on from a previous run: each terminal's supplies as the system last saw them.

A run of the simulator starts every terminal with supplies drawn at random (paper left on
the roll, notes in the stacker). A run that continues an earlier one (the demo's live phase
after its replay, the demo started again) must not draw them again: a terminal whose paper
was full would start "low" and open ``printer_paper_low`` that a continuous run never had.
``--resume FILE.json`` gives each terminal's last known levels, ``{tid: {"paper": "full",
"stacker": "ok"}}`` (the values of the status contract); a terminal is started at a level
that reports the same value. Terminals not named keep their draw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulator.engine import World


def load(path: Path) -> dict[str, dict[str, str]]:
    """Read a resume file; raise ValueError naming what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--resume {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and all(isinstance(x, str) for x in v.values()) for v in data.values()
    ):
        raise ValueError(f"--resume {path}: expected {{tid: {{field: value}}}}")
    return data


def apply(world: World, levels: Mapping[str, Mapping[str, Any]]) -> int:
    """Start the named terminals at their last known levels; return how many were set."""
    done = 0
    for terminal in world.terminals:
        known = levels.get(terminal.tid)
        if not known:
            continue
        d = terminal.devices
        paper = known.get("paper")
        if paper == "low":
            d.paper_left = min(d.paper_left, d.paper_low)
            d.paper_left = max(d.paper_left, 1)
        elif paper is not None:
            # full, or a fault value (out, jammed): the roll was not running low.
            d.paper_left = max(d.paper_left, d.paper_low + 1)
        stacker = known.get("stacker")
        if stacker in ("high", "full"):
            d.count = max(d.count, d.stacker_high)
        elif stacker is not None:
            d.count = min(d.count, d.stacker_high - 1)
        d.paper = d.paper_level()
        d.replenishment = d.stacker_level()
        done += 1
    return done
