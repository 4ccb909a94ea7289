"""The termwatch dashboards as JSON: built from code, written to ``dashboards/json/``.

The output is stable (sorted keys, fixed panel ids and positions, a trailing newline), so
the committed files change only when the code does, and a check can regenerate them and
compare byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards import customers, fleet, health, incidents, terminal

#: Where the committed JSON lives (shipped with the package; provisioning reads it).
JSON_DIR = Path(__file__).parent / "json"


@dataclass(frozen=True, slots=True)
class Spec:
    filename: str
    build: Callable[[], dashboard_models.Dashboard]


DASHBOARDS = (
    Spec("fleet.json", fleet.build),
    Spec("incidents.json", incidents.build),
    Spec("customers.json", customers.build),
    Spec("terminal.json", terminal.build),
    Spec("health.json", health.build),
)


def render(dashboard: dashboard_models.Dashboard) -> str:
    """The dashboard's JSON model as text, byte-for-byte the same for the same code."""
    return (
        json.dumps(dashboard, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )


def rendered() -> dict[str, str]:
    """Every dashboard's file name and JSON text."""
    return {spec.filename: render(spec.build()) for spec in DASHBOARDS}


def models() -> list[dict[str, Any]]:
    """Every dashboard's JSON model as plain data (what Grafana's API takes)."""
    return [json.loads(text) for text in rendered().values()]


def write(out_dir: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard into ``out_dir`` (created if missing); return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(out_dir: Path = JSON_DIR) -> list[str]:
    """Names of files in ``out_dir`` that differ from what the code generates (or are missing)."""
    differing = []
    for name, text in rendered().items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            differing.append(name)
    return differing
