"""Command-line entry points of this area."""

from __future__ import annotations

from termwatch.cli import Commands


def register(commands: Commands) -> None:
    """Add this area's sub-commands."""
