"""Restarting the demo's fleet opens nothing a continuous run would not.

Each phase of the demo (the replay, the live run after it, a run after a restart) is a new
simulator process with a new seed. It drew every terminal's supplies again (a terminal whose
paper was full started "low": ``printer_paper_low`` on random terminals at every start) and
played the scripted faults of the demo's first two hours again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from simulator.scenario import load_scenario
from termwatch.db import Row
from termwatch.demo_data.fleet import (
    continuing_scenario,
    first_phase,
    scenario_path,
    write_levels,
)

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def first_paper(tmp_path: Path, seed: int, *extra: str) -> dict[str, str]:
    """Each terminal's paper in its first status of a dry run of the demo scenario."""
    out = tmp_path / f"run-{seed}-{len(extra)}.jsonl"
    subprocess.run(
        [
            sys.executable, "-m", "termwatch.cli", "simulate",
            "--scenario", str(scenario_path()), "--seed", str(seed),
            "--duration", "2m", "--dry-run", "--out", str(out), "--quiet", *extra,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    first: dict[str, str] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if not item["topic"].endswith("/status"):
            continue
        body = json.loads(item["payload"])
        first.setdefault(body["tid"], body["devices"]["printer"]["paper"])
    return first


def test_a_continuing_run_starts_the_terminals_at_their_last_known_paper(
    tmp_path: Path,
) -> None:
    before = first_paper(tmp_path, 8081)
    # A new seed draws the supplies again: some terminals change level for no reason.
    drawn = first_paper(tmp_path, 8082)
    assert any(before[tid] != drawn[tid] for tid in before)
    levels = tmp_path / "levels.json"
    levels.write_text(json.dumps({tid: {"paper": v} for tid, v in before.items()}))
    resumed = first_paper(tmp_path, 8082, "--resume", str(levels))
    assert resumed == before


def test_a_bad_resume_file_is_refused_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "levels.json"
    bad.write_text("[1, 2]")
    done = subprocess.run(
        [sys.executable, "-m", "termwatch.cli", "simulate", "--scenario",
         str(scenario_path()), "--duration", "1m", "--dry-run", "--resume", str(bad)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().startswith("simulate: --resume")


def test_a_phase_after_history_drops_the_scripted_faults(tmp_path: Path) -> None:
    assert load_scenario(str(scenario_path())).faults
    assert not first_phase(NOW, None, speed=120.0, replay=True).continuing
    restart = first_phase(NOW, NOW - timedelta(minutes=30), speed=120.0, replay=True)
    assert restart.continuing
    continued = load_scenario(str(continuing_scenario(tmp_path)))
    assert continued.faults == ()
    original = load_scenario(str(scenario_path()))
    assert (continued.regions, continued.natural) == (original.regions, original.natural)


def test_the_levels_are_what_termwatch_last_saw(
    clean_db: str, db: psycopg.Connection[Row], tmp_path: Path
) -> None:
    db.execute(
        "INSERT INTO device_state (tid, device, field, value, since, ts) VALUES"
        " ('T-1', 'printer', 'paper', 'low', now(), now()),"
        " ('T-1', 'cashAcceptor', 'stacker.replenishment', 'ok', now(), now()),"
        " ('T-2', 'printer', 'paper', 'full', now(), now()),"
        " ('T-2', 'printer', 'media', 'jammed', now(), now())"
    )
    db.commit()
    path = tmp_path / "levels.json"
    assert write_levels(clean_db, path) == 2
    assert json.loads(path.read_text()) == {
        "T-1": {"paper": "low", "stacker": "ok"},
        "T-2": {"paper": "full"},
    }
