"""Stopping a big run (issue 15): how fast the rows not read yet are accounted for.

    python tests/benchmarks/bench_stop.py [--rows 1000000] [--repeat 3]

Generates the Salesforce-shaped CSV of bench_validate.py. Prints, medians of --repeat runs:

* the accounting pass alone (row numbers of every data row, reading only: what a stopping run
  does with the rest of the file) beside a bare ``csv.reader`` pass over the same file, same run;
* a real ``bulk-sync run`` against the sandbox (two requests in flight, each answered after 1 s)
  sent SIGINT once sending has begun: the time from the signal to the process's exit, which is
  the drain (at most the 1 s answers in flight) plus the accounting of the rest of the file.
"""

from __future__ import annotations

import argparse
import csv
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_validate import MAPPING, make_csv

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def accounting(data: Path) -> tuple[float, float]:
    from bulk_sync.load import open_source

    t = time.perf_counter()
    src = open_source(data)
    n = sum(len(part) for part in src.row_numbers())
    counted = time.perf_counter() - t
    t = time.perf_counter()
    with data.open(encoding="utf-8", newline="") as fh:
        m = sum(1 for _ in csv.reader(fh)) - 1
    bare = time.perf_counter() - t
    assert n == m, (n, m)
    return counted, bare


def interrupted_run(data: Path, mapping: Path, tmp: Path) -> float:
    from bulk_sync.sandbox import Faults, SandboxServer

    with SandboxServer("bench-token", Faults(latency=1.0)) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bulk_sync", "run", str(data), "-m", str(mapping), "--base-url",
             server.base_url, "--no-state", "--report", str(tmp / "r.csv"), "--concurrency", "2", "--quiet"],
            env={"SIRO_API_TOKEN": "bench-token", "PATH": "/usr/bin:/bin"}, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while server.state.requests < 2:
            time.sleep(0.05)
        time.sleep(0.5)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
        took = time.perf_counter() - sent
    lines = sum(1 for _ in (tmp / "r.csv").open(encoding="utf-8-sig")) - 1
    assert proc.returncode == 3 and lines >= 1, (proc.returncode, lines)
    return took


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data = make_csv(tmp / "data.csv", a.rows)
        mapping = tmp / "m.yaml"
        mapping.write_text(MAPPING)
        passes = [accounting(data) for _ in range(a.repeat)]
        counted = statistics.median(c for c, _ in passes)
        bare = statistics.median(b for _, b in passes)
        print(f"{a.rows:,} rows ({data.stat().st_size / 1e6:.0f} MB): accounting pass {counted:.2f} s, "
              f"bare csv.reader pass {bare:.2f} s (ratio {counted / bare:.2f})")  # fmt: skip
        stops = [interrupted_run(data, mapping, tmp) for _ in range(a.repeat)]
        print(f"SIGINT to exit of a real run (drain of two 1 s requests, then the accounting): median "
              f"{statistics.median(stops):.2f} s (runs: {', '.join(f'{s:.2f}' for s in stops)})")  # fmt: skip


if __name__ == "__main__":
    main()
