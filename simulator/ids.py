"""The identifiers a run hands out: message ids, operation ids and complaint refs.

telemetry.md wants message ids and ``op_id`` unique per terminal, and one database usually
holds many runs of the simulator (``termwatch demo`` runs it phase after phase, each phase
starting where the last one ended). Every identifier therefore carries the run's **tag**:
nine base-36 characters, the first six the simulated start in whole seconds since the epoch
(modulo 36**6, about 69 years), the last three a digest of the seed and the whole scenario
(start and duration included). So

* two runs that start at different seconds never share an identifier;
* two runs that start in the same second differ unless their 3-character digests collide
  (1 chance in 46,656 per pair);
* the same (seed, scenario, start) gives the same tag, so a repeated run repeats its ids
  byte for byte and termwatch stores its messages once.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Final

from simulator.scenario_model import Scenario
from simulator.timefmt import SECOND, to_datetime

_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
TIME_CHARS: Final = 6
DIGEST_CHARS: Final = 3
MAX_ID: Final = 64  # telemetry.md: a message id has 1 to 64 characters


def base36(value: int, width: int) -> str:
    """``value`` (0 <= value < 36**width) in lower-case base 36, zero-padded to ``width``."""
    if not 0 <= value < 36**width:
        raise ValueError(f"{value} does not fit in {width} base-36 digits")
    out = []
    for _ in range(width):
        value, digit = divmod(value, 36)
        out.append(_DIGITS[digit])
    return "".join(reversed(out))


def run_tag(scenario: Scenario, seed: int) -> str:
    """The tag of a run of ``scenario`` (after any --start/--duration override) with ``seed``.

    The scenario's ``source`` (the file name) is left out: the same scenario read from
    another path is the same run.
    """
    start_s = scenario.start // SECOND
    fingerprint = f"{seed}\n{replace(scenario, source='')!r}".encode()
    digest = int.from_bytes(hashlib.blake2b(fingerprint, digest_size=8).digest(), "big")
    return base36(start_s % 36**TIME_CHARS, TIME_CHARS) + base36(
        digest % 36**DIGEST_CHARS, DIGEST_CHARS
    )


def message_id(tid: str, tag: str, seq: int) -> str:
    """``<tid>-<tag>-<seq>``: at most 32 + 1 + 9 + 1 + 21 characters, within the 64 allowed."""
    return f"{tid}-{tag}-{seq}"


def op_id(tid: str, tag: str, started: int, offset_min: int, n: int) -> str:
    """``<tid>-<local date of the start>-<tag>-<n, 6 digits>``, e.g.
    ``T-000042-20260504-tf0m8wq7k-000123``; ``n`` counts the terminal's operations in the run."""
    day = to_datetime(started, offset_min).strftime("%Y%m%d")
    return f"{tid}-{day}-{tag}-{n:06d}"


def complaint_ref(start: int, tag: str, n: int) -> str:
    """``CRM-<UTC date of the run's start>-<tag>-<n, 6 digits>``: unique across runs too."""
    return f"CRM-{to_datetime(start).strftime('%Y%m%d')}-{tag}-{n:06d}"
