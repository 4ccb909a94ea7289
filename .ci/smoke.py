"""The README's first command, as a newcomer runs it, on a plain install.

Run with the Python of a virtual environment that has termwatch installed without extras:

    python .ci/smoke.py demo WORKDIR
    python .ci/smoke.py serve -- COMMAND...
    python .ci/smoke.py image-src DOCKERFILE DEST


``demo`` runs ``termwatch --help`` and every sub-command's ``--help``, then ``termwatch demo``
from WORKDIR (its default data directory lands there), waits until the API lists an
incident, sends SIGINT and requires a clean exit. ``serve`` runs a deployment's command line
(the container image's, say ``sh -c "termwatch db migrate && exec termwatch serve"``) with
the TERMWATCH_* environment it is given, waits until ``/healthz`` answers 200, sends SIGTERM
and requires a clean exit. ``image-src`` copies what the Dockerfile's build stage copies
into DEST, so that the image's ``pip install .`` can be run on exactly those files without a
container engine. Only the standard library is used here, so nothing the smoke
needs can hide a missing dependency of the product. Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

START_DEADLINE_S = 120.0
INCIDENT_DEADLINE_S = 240.0
STOP_DEADLINE_S = 60.0
HELP_DEADLINE_S = 60.0


def termwatch() -> list[str]:
    return [str(Path(sys.executable).with_name("termwatch"))]


def subcommands() -> list[list[str]]:
    """Every command path of the CLI (``[]``, ``["db"]``, ``["db", "migrate"]``, ...)."""
    from termwatch.cli import build_parser

    paths: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        paths.append(path)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, [*path, name])

    walk(build_parser(), [])
    return paths


def check_help() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run(path: list[str]) -> tuple[list[str], subprocess.CompletedProcess[str]]:
        proc = subprocess.run(
            [*termwatch(), *path, "--help"],
            capture_output=True,
            text=True,
            timeout=HELP_DEADLINE_S,
            check=False,
        )
        return path, proc

    paths = subcommands()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for path, proc in pool.map(run, paths):
            if proc.returncode != 0 or "usage:" not in proc.stdout:
                sys.exit(
                    f"smoke: termwatch {' '.join(path)} --help failed:\n{proc.stdout}{proc.stderr}"
                )
    print(f"smoke: --help works for all {len(paths)} commands", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def check_demo(workdir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
    env.update(TERMWATCH_HTTP=f"127.0.0.1:{port}", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [*termwatch(), "demo"],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()

    def fail(why: str) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sys.exit(f"smoke: {why}\n--- termwatch demo printed:\n{''.join(output)[-8000:]}")

    def wait_for(pattern: str, deadline: float) -> re.Match[str]:
        while True:
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None:
                fail(f"termwatch demo exited with {proc.wait()} before printing {pattern!r}")
                raise AssertionError  # unreachable
            if match := re.search(pattern, line):
                return match
            if time.monotonic() > deadline:
                fail(f"no {pattern!r} within the deadline")

    started = time.monotonic()
    wait_for(r"termwatch demo is running", started + START_DEADLINE_S)
    token = wait_for(r"agent token\s+(\S+)", started + START_DEADLINE_S)[1]
    print(f"smoke: the demo is up in {time.monotonic() - started:.0f} s", flush=True)

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/incidents",
        headers={"Authorization": f"Bearer {token}"},
    )
    deadline = time.monotonic() + INCIDENT_DEADLINE_S
    while True:
        if proc.poll() is not None:
            fail(f"termwatch demo exited with {proc.returncode} before any incident")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                incidents = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            fail(f"GET /api/v1/incidents failed: {exc}")
        if incidents:
            break
        if time.monotonic() > deadline:
            fail(f"no incident listed within {INCIDENT_DEADLINE_S:.0f} s")
        time.sleep(1)
    first = incidents[0]
    print(
        f"smoke: the API lists {len(incidents)} incident(s), first {first['kind']} on"
        f" {first['tid']}, {time.monotonic() - started:.0f} s after start",
        flush=True,
    )

    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        fail(f"termwatch demo did not stop within {STOP_DEADLINE_S:.0f} s of SIGINT")
        return
    if code != 0:
        fail(f"termwatch demo exited with {code} on SIGINT")
    print("smoke: the demo stopped cleanly on SIGINT", flush=True)


def check_serve(command: list[str]) -> None:
    http = os.environ.get("TERMWATCH_HTTP", "127.0.0.1:8080")
    proc = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        output.extend(proc.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def fail(why: str) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        sys.exit(f"smoke: {why}\n--- {' '.join(command)} printed:\n{''.join(output)[-8000:]}")

    started = time.monotonic()
    deadline = started + START_DEADLINE_S
    while True:
        if proc.poll() is not None:
            fail(f"exited with {proc.returncode} before /healthz answered 200")
        try:
            with urllib.request.urlopen(f"http://{http}/healthz", timeout=5) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            fail(f"/healthz did not answer 200 within {START_DEADLINE_S:.0f} s")
        time.sleep(0.5)
    print(f"smoke: healthy {time.monotonic() - started:.0f} s after start", flush=True)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        fail(f"did not stop within {STOP_DEADLINE_S:.0f} s of SIGTERM")
        return
    if code != 0:
        fail(f"exited with {code} on SIGTERM")
    print("smoke: stopped cleanly on SIGTERM", flush=True)


def image_src(dockerfile: Path, dest: Path) -> None:
    """Copy the build stage's ``COPY SRC... DST`` sources (relative to the Dockerfile)."""
    import shlex
    import shutil

    stages = 0
    copied = 0
    for raw in dockerfile.read_text().splitlines():
        words = shlex.split(raw, comments=True)
        if not words:
            continue
        if words[0].upper() == "FROM":
            stages += 1
            if stages > 1:
                break
        if words[0].upper() != "COPY" or any(w.startswith("--") for w in words[1:]):
            continue
        *sources, target = words[1:]
        into = dest / target
        for source in sources:
            path = dockerfile.parent / source
            if path.is_dir():
                shutil.copytree(
                    path,
                    into if len(sources) == 1 and not target.endswith("/") else into / path.name,
                    dirs_exist_ok=True,
                )
            else:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, into / path.name)
            copied += 1
    if not copied:
        sys.exit(f"smoke: no COPY in the build stage of {dockerfile}")
    print(f"smoke: {copied} sources of the image's build stage copied to {dest}", flush=True)


def main() -> None:
    if sys.argv[1:2] == ["demo"] and len(sys.argv) == 3:
        workdir = Path(sys.argv[2]).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        check_help()
        check_demo(workdir)
    elif sys.argv[1:3] == ["serve", "--"] and len(sys.argv) > 3:
        check_serve(sys.argv[3:])
    elif sys.argv[1:2] == ["image-src"] and len(sys.argv) == 4:
        image_src(Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
