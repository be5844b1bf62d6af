"""Memory flat at any size (issue 17): peak RSS of `validate` and `run` on 100k, 1M and 3M rows of
a file where every date-time is distinct (nothing for a memo to reuse).

    python tests/benchmarks/bench_memory.py                      # validate and run, 3 sizes
    python tests/benchmarks/bench_memory.py --sizes 100000 1000000 --modes validate --repeat 1
    python tests/benchmarks/bench_memory.py --sizes 100000 1000000 --modes validate --all-invalid

Each figure is the peak resident set of the CLI process (its ru_maxrss) plus, for a dry run, the
peak of its worker process's private pages (sampled every 50 ms: what the worker, which maps chunks
beside the reader, holds besides the pages it shares with the CLI), median of --repeat runs. `run`
syncs to the sandbox in its own process with no rate limit, state on. Targets: under 300 MB at
every size, and within 10 % from the smallest size to the largest. Each size also prints the
median time of its whole CLI runs (sampling included), and rows a second.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import MAPPING, TOKEN, cli_child, example_rows, median, sandbox_process

TIME_COLUMNS = ("Start", "End", "Created", "Last Modified")
FORMAT = "%m/%d/%Y %I:%M %p"


def make_distinct(path: Path, n: int, invalid: bool = False) -> Path:
    """n valid example-shaped rows; each row's times are its own minute (none repeats).
    ``invalid``: every row's Start is not a date (every row goes to the error file)."""
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
            if invalid:
                row[at["Start"]] = f"not a date {i}"
            w.writerow(row)
    return path


def _private_kb(pid: int) -> int:
    """What process ``pid`` holds that no other does (its private pages), in kB; 0 once it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Private_"))


def _workers_of(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = []
    for kid in map(int, kids):
        try:
            if b"bulk_sync" in Path(f"/proc/{kid}/cmdline").read_bytes() or _is_fork(pid, kid):
                out.append(kid)
        except OSError:
            continue
    return out


def _is_fork(parent: int, kid: int) -> bool:
    """A forked worker runs the parent's executable (an ldconfig run by ctypes does not)."""
    return Path(f"/proc/{kid}/exe").resolve() == Path(f"/proc/{parent}/exe").resolve()


def peak_rss_mb(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """The CLI process's peak RSS (its ru_maxrss, exact), and the peak of what its worker process
    (a dry run's) holds besides (its private pages, sampled every 50 ms; the pages it shares with
    the CLI since the fork are counted once, in the CLI's RSS)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", cli_child(argv)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    worker_peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal worker_peak
        while not done.wait(0.05):
            worker_peak = max(worker_peak, sum(_private_kb(k) for k in _workers_of(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    line = [ln for ln in err.splitlines() if ln.startswith("RSS_MB")]
    assert line and "Traceback" not in err, err[-3000:]
    parts = line[0].split()
    assert parts[-1] in ("0", "1"), err[-3000:]  # 1: rows that did not sync
    return float(parts[1]), worker_peak / 1024


def measure(data: Path, mode: str, scratch: Path) -> tuple[float, float]:
    env = {**os.environ, "SIRO_API_TOKEN": TOKEN, "XDG_STATE_HOME": str(scratch)}
    argv = [mode, str(data), "-m", str(MAPPING), "-q", "--report", str(scratch / f"{mode}.csv")]
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
    p.add_argument("--all-invalid", action="store_true", help="every row invalid (the error file's memory)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = {n: make_distinct(tmp / f"distinct-{n}.csv", n, args.all_invalid) for n in args.sizes}
        for mode in args.modes:
            peaks = []
            for n, data in files.items():
                runs, cli, worker, took = [], [], [], []
                for k in range(args.repeat):
                    scratch = tmp / f"{mode}-{n}-{k}"
                    scratch.mkdir()
                    started = time.perf_counter()
                    own, extra = measure(data, mode, scratch)
                    took.append(time.perf_counter() - started)
                    runs.append(own + extra)
                    cli.append(own)
                    worker.append(extra)
                peaks.append(median(runs))
                each = ", ".join(f"{r:.0f}" for r in runs)
                parts = (
                    f"; the CLI {median(cli):.0f} + its worker {median(worker):.0f}" if max(worker) else ""
                )
                print(f"{mode} {n:>9,} rows: peak median {median(runs):.0f} MB ({each}){parts}", flush=True)
                speed = n / median(took)
                print(f"    whole CLI run: median {median(took):.1f} s, {speed:,.0f} rows/s", flush=True)
            print(f"{mode}: largest / smallest = {peaks[-1] / peaks[0]:.2f}; max {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()
