"""``termwatch bench import``: time and peak memory of ``termwatch terminals import``.

Writes a registry CSV of ``--terminals`` terminals (Cyrillic names and addresses, as an
operator's registry has them) to a temporary directory, creates a scratch database on the
configured PostgreSQL server, and runs ``termwatch terminals import`` on it twice in a child
process of its own: once into the empty registry, once over it (every row updated). The
last line printed is::

    import: <N> terminals, new <T1> s, again <T2> s, peak rss <M> MB
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.servers import LOCAL_SERVER, load_average, scratch_database
from termwatch.settings import Settings

CITIES = (
    ("Москва", "Москва"),
    ("Казань", "Татарстан"),
    ("Новосибирск", "Новосибирская область"),
    ("Екатеринбург", "Свердловская область"),
    ("Владивосток", "Приморский край"),
)
STREETS = ("ул. Ленина", "пр. Мира", "ул. Баумана", "ул. Гагарина", "Комсомольская пл.")


def write_registry(path: Path, terminals: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("tid,name,address,city,region,lat,lon,model,service_group\n")
        for i in range(terminals):
            city, region = CITIES[i % len(CITIES)]
            street = STREETS[rng.randrange(len(STREETS))]
            out.write(
                f'T-{i:06d},ТЦ «Галерея {i % 997}»,"{street}, {rng.randint(1, 200)}",{city},'
                f"{region},{rng.uniform(43, 60):.4f},{rng.uniform(30, 135):.4f},"
                f"ТК-19 Cash,grp-{i % 40}\n"
            )


def _import(dsn: str, path: Path) -> float:
    env = {**os.environ, "TERMWATCH_DATABASE_URL": dsn, "TERMWATCH_LOG_LEVEL": "WARNING"}
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "termwatch.cli", "terminals", "import", str(path)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def main(args: argparse.Namespace, settings: Settings) -> int:
    if args.terminals < 1:
        print("--terminals must be positive", file=sys.stderr)
        return 2
    server = args.database_server or settings.database_url or LOCAL_SERVER
    print(f"machine: {os.cpu_count()} cores, load average {load_average()} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="tw-bench-import-") as tmp:
        path = Path(tmp) / "registry.csv"
        write_registry(path, args.terminals)
        size_mb = path.stat().st_size / 2**20
        print(f"registry: {args.terminals} terminals, {size_mb:.1f} MB of CSV", flush=True)
        with scratch_database(server) as dsn:
            first = _import(dsn, path)
            again = _import(dsn, path)
    # ru_maxrss of the children: the larger of the two imports, in KiB on Linux.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"load average {load_average()} at the end", flush=True)
    print(
        f"import: {args.terminals} terminals, new {first:.1f} s, again {again:.1f} s,"
        f" peak rss {peak_mb:.0f} MB",
        flush=True,
    )
    return 0
