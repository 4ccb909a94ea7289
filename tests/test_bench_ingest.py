"""``termwatch bench ingest`` measures the collector as deployed (default rules on) beside
the collector alone, and prints both on its last line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_the_ingest_benchmark_runs_with_and_without_the_rules(pg_server_dsn: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "termwatch.cli", "bench", "ingest", "--messages", "3000",
         "--terminals", "100", "--window", "1000", "--database-server", pg_server_dsn],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert "-- rules off" in lines
    assert "-- rules on (default rules, complaint intake)" in lines
    assert re.fullmatch(
        r"ingest: \d+ msg/s committed, 0 lost, commit p99 [\d.]+ ms, rss \d+ MB, rules on;"
        r" rules off \d+ msg/s",
        lines[-1],
    ), lines[-1]
