"""Helpers for the benchmarks: example-shaped CSVs, a sandbox in its own process, the CLI as a subprocess."""

from __future__ import annotations

import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CSV = ROOT / "example_data" / "engagements.csv"
MAPPING = ROOT / "mappings" / "engagements.yaml"
TOKEN = "bench-token"


def example_rows() -> tuple[list[str], list[list[str]]]:
    """The example file's header and its valid rows (those the example makes invalid left out)."""
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], [r for r in rows[1:] if r[0] and not r[2].startswith("INVALID")]


def make_csv(path: Path, n: int) -> Path:
    """n valid rows cycled from the example file, each with its own Appointment ID."""
    header, good = example_rows()
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(n):
            w.writerow([f"B-{i:07d}", *good[i % len(good)][1:]])
    return path


@contextmanager
def sandbox_process(*args: str) -> Iterator[str]:
    """`bulk-sync sandbox --port 0 ARGS` in its own process (its own CPU core); yields the base URL."""
    env = {**os.environ, "SIRO_API_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk_sync", "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                yield m.group(1)
                break
        else:
            raise RuntimeError("the sandbox did not start")
    finally:
        proc.terminate()
        proc.wait(10)


def stats(base_url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base_url}/_sandbox/stats") as r:
        return json.loads(r.read())


def run_cli(*args: str | Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """The CLI as a user runs it (state on, in a fresh folder so every record is new)."""
    import tempfile

    scratch = tempfile.mkdtemp(prefix="bulk_sync-bench-")  # state and report stay out of the repo
    env = {**os.environ, "SIRO_API_TOKEN": TOKEN, "XDG_STATE_HOME": scratch}
    t = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bulk_sync",
            "run",
            *map(str, args),
            "--quiet",
            "--report",
            f"{scratch}/report.csv",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    return time.perf_counter() - t, proc


def median(values: list[float]) -> float:
    return statistics.median(values)


class Stages:
    """Seconds spent per stage, summed over chunks: ``with took("read"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t

    def __str__(self) -> str:
        return ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())


CLI_CHILD = """
import resource, sys, runpy
sys.argv = ["bulk-sync", *{argv!r}]
code = 0
try:
    runpy.run_module("bulk_sync", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "EXIT", code, file=sys.stderr)
"""


def cli_child(argv: list[str]) -> str:
    """Python code for `python -c`: runs `bulk-sync ARGV` in that process, then prints on stderr
    `RSS_MB <its own peak RSS in MB> EXIT <exit code>`."""
    return CLI_CHILD.format(argv=argv)
