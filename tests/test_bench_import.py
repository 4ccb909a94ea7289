"""``termwatch bench import`` runs the real import twice and prints its figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bench.registry import write_registry
from terminals import registry


def test_the_generated_registry_is_one_the_import_accepts(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    write_registry(path, 300)
    assert registry.check_file(path) == 300
    assert any("Казань" in t.city for t in registry.read(path))


def test_the_import_benchmark_prints_its_figures_on_the_last_line(pg_server_dsn: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "termwatch.cli", "bench", "import", "--terminals", "500",
         "--database-server", pg_server_dsn],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(
        r"import: 500 terminals, new [\d.]+ s, again [\d.]+ s, peak rss (\d+) MB", last
    )
    assert match, last
    assert int(match[1]) > 0
