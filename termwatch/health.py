"""What ``/healthz`` checks besides the database: parts of this process that register.

A part (the collector's broker link, its writer) registers a check that answers True while
it works; :func:`report` runs them all. Checks must be quick and must not block.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Check = Callable[[], bool]

_lock = threading.Lock()
_checks: dict[str, Check] = {}


def register(name: str, check: Check) -> None:
    """Add (or replace) the check ``name``."""
    with _lock:
        _checks[name] = check


def unregister(name: str, check: Check | None = None) -> None:
    """Remove the check ``name`` (only if it is still ``check``, when given)."""
    with _lock:
        if check is None or _checks.get(name) is check:
            _checks.pop(name, None)


def registered() -> dict[str, Check]:
    """A copy of the registered checks, by name."""
    with _lock:
        return dict(_checks)


def report() -> dict[str, bool]:
    """Every registered part and whether it works; a check that raises counts as down."""
    with _lock:
        checks = dict(_checks)
    result: dict[str, bool] = {}
    for name, check in checks.items():
        try:
            result[name] = bool(check())
        except Exception:
            result[name] = False
    return result
