"""A plain install (no extras) is the whole product: nothing it runs imports a development
or benchmark dependency, and a benchmark that needs an extra says which one in one line.

Each check runs in a child interpreter whose import system refuses the optional modules,
as an environment without them would."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("termwatch", "terminals", "collector", "rules", "simulator", "dashboards", "notify")
#: What ``[project.optional-dependencies]`` adds beyond a plain install.
OPTIONAL = ("httpx", "pytest", "hypothesis", "aiosmtpd", "schemathesis", "playwright", "mypy")

BLOCK = f"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Refuse())
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _modules() -> list[str]:
    names = []
    for package in (*PRODUCT, "bench"):
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            names.append(info.name)
    return sorted(names)


#: Modules that only a command behind an extra imports (it names the extra when missing).
BEHIND_AN_EXTRA = {"bench.api": "bench", "termwatch.web.screenshots": "screenshots"}


def test_every_product_module_imports_without_the_optional_dependencies() -> None:
    modules = [m for m in _modules() if m not in BEHIND_AN_EXTRA]
    assert "collector.service" in modules
    assert "termwatch.web.app" in modules
    result = _run(
        "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)", *modules
    )
    assert result.returncode == 0, result.stderr


def test_the_command_line_and_every_help_work_without_the_optional_dependencies() -> None:
    code = """
import argparse, contextlib, io, sys
from termwatch.cli import build_parser, main
paths = []
def walk(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append([*path, name]); walk(sub, [*path, name])
walk(build_parser(), [])
for path in [[]] + paths:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*path, "--help"])
    assert "usage: termwatch" in out.getvalue(), path
print(len(paths))
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 40  # every command and sub-command was asked


def test_a_benchmark_whose_extra_is_missing_names_it_in_one_line() -> None:
    result = _run(
        "import sys\nfrom termwatch.cli import main\nsys.exit(main(sys.argv[1:]))", "bench", "api"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs httpx" in lines[0]
    assert "pip install 'termwatch[bench]'" in lines[0]
