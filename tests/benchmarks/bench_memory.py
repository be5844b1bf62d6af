"""Memory flat at any size (issue 17): peak RSS of `validate` and `run` on 100k, 1M and 3M rows of
a file where every date-time is distinct (nothing for a memo to reuse).

    python tests/benchmarks/bench_memory.py                      # validate and run, 3 sizes
    python tests/benchmarks/bench_memory.py --sizes 100000 1000000 --modes validate --repeat 1

Each figure is the peak resident set of the CLI process (os.wait4's ru_maxrss), median of --repeat
runs. `run` syncs to the sandbox in its own process with no rate limit, state on. Targets: under
300 MB at every size, and within 10 % from the smallest size to the largest.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import MAPPING, TOKEN, example_rows, median, sandbox_process

TIME_COLUMNS = ("Start", "End", "Created", "Last Modified")
FORMAT = "%m/%d/%Y %I:%M %p"


def make_distinct(path: Path, n: int) -> Path:
    """n valid example-shaped rows; each row's times are its own minute (none repeats)."""
    header, good = example_rows()
    at = {c: header.index(c) for c in TIME_COLUMNS}
    cleared = [header.index(c) for c in ("Deleted At", "Close Date")]
    base = dt.datetime(2020, 1, 1, 0, 0)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(n):
            row = [f"M-{i:08d}", *good[i % len(good)][1:]]
            start = base + dt.timedelta(minutes=i)
            row[at["Start"]] = start.strftime(FORMAT)
            row[at["End"]] = (start + dt.timedelta(minutes=45)).strftime(FORMAT)
            row[at["Created"]] = (start - dt.timedelta(days=3, minutes=7)).strftime(FORMAT)
            row[at["Last Modified"]] = (start - dt.timedelta(days=1, minutes=11)).strftime(FORMAT)
            for c in cleared:
                row[c] = ""
            w.writerow(row)
    return path


def peak_rss_mb(argv: list[str], env: dict[str, str]) -> float:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode in (0, 1) and "Traceback" not in err, err  # 1: rows that did not sync
    return usage.ru_maxrss / 1024  # kB on Linux


def measure(data: Path, mode: str, scratch: Path) -> float:
    env = {**os.environ, "SIRO_API_TOKEN": TOKEN, "XDG_STATE_HOME": str(scratch)}
    argv = [sys.executable, "-m", "bulk_sync", mode, str(data), "-m", str(MAPPING), "-q",
            "--report", str(scratch / f"{mode}.csv")]  # fmt: skip
    if mode == "validate":
        return peak_rss_mb(argv, env)
    with sandbox_process("--no-validate") as url:
        return peak_rss_mb(
            [
                *argv,
                "--base-url",
                url,
                "--rate-per-min",
                "0",
                "--state",
                str(scratch / f"s-{data.stem}.sqlite3"),
            ],
            env,
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 3_000_000])
    p.add_argument("--modes", nargs="*", default=["validate", "run"])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = {n: make_distinct(tmp / f"distinct-{n}.csv", n) for n in args.sizes}
        for mode in args.modes:
            peaks = []
            for n, data in files.items():
                runs = []
                for k in range(args.repeat):
                    scratch = tmp / f"{mode}-{n}-{k}"
                    scratch.mkdir()
                    runs.append(measure(data, mode, scratch))
                peaks.append(median(runs))
                each = ", ".join(f"{r:.0f}" for r in runs)
                print(f"{mode} {n:>9,} rows: peak RSS median {median(runs):.0f} MB ({each})", flush=True)
            print(f"{mode}: largest / smallest = {peaks[-1] / peaks[0]:.2f}; max {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()
