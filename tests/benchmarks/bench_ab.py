"""A/B against another checkout (the previous release), alternated in one sitting: a change's cost
on a noisy machine is only visible beside the same measure of the code before it.

    git worktree add --detach /tmp/base <previous commit>
    python tests/benchmarks/bench_ab.py --base /tmp/base [--rows 1000000] [--rounds 3] [--what latency]

dry-run: `bulk-sync validate` of bench_validate.py's Salesforce-shaped file (made once), each tree in
its own process (PYTHONPATH), base then this checkout, each round followed by the bound: a bare
`csv.reader` pass. latency: bench_delivery.py's latency-bound case (single records, 64 workers,
50 ms of sandbox latency), each tree running its own copy of the benchmark. Prints every run and
the medians; leave the machine alone while it runs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_validate as bv

HERE = Path(__file__).resolve().parents[2]


def dry_run(trees: dict[str, Path], rows: int, rounds: int) -> None:
    d = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    data = bv.make_csv(d / "events.csv", rows)
    mapping = d / "m.yaml"
    mapping.write_text(bv.MAPPING)
    times: dict[str, list[float]] = {name: [] for name in [*trees, "bare csv.reader"]}
    for r in range(rounds):
        for name, tree in trees.items():
            argv = [str(data), "--mapping", str(mapping), "--report", str(d / f"{name}.csv"), "--quiet"]
            argv.append("--no-rep-check")
            env = {k: v for k, v in os.environ.items() if k not in ("SIRO_API_TOKEN", "BULK_SYNC_WORKERS")}
            env["PYTHONPATH"] = str(tree)
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", bv.CHILD.format(argv=argv)],
                capture_output=True,
                text=True,
                cwd=tree,
                env=env,
            )
            times[name].append(time.perf_counter() - t)
            if "RSS_MB" not in proc.stderr:
                raise SystemExit(proc.stderr[-2000:])
            print(f"dry run, round {r + 1}, {name}: {times[name][-1]:.2f} s", flush=True)
        times["bare csv.reader"].append(bv.bare_csv_reader(data))
    _medians(f"dry run of {rows:,} rows", times)


def latency(trees: dict[str, Path], rounds: int) -> None:
    rates: dict[str, list[float]] = {name: [] for name in trees}
    for r in range(rounds):
        for name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree)}
            proc = subprocess.run(
                [sys.executable, "bench_delivery.py", "latency", "--repeat", "1"],
                capture_output=True, text=True, cwd=tree / "tests" / "benchmarks", env=env,
            )  # fmt: skip
            m = re.search(r"bulk-sync: median ([\d,]+) requests/s", proc.stdout)
            if m is None:
                raise SystemExit(proc.stdout + proc.stderr[-2000:])
            rates[name].append(float(m.group(1).replace(",", "")))
            print(f"latency-bound, round {r + 1}, {name}: {rates[name][-1]:,.0f} requests/s", flush=True)
    _medians("latency-bound delivery (requests/s)", rates)


def _medians(what: str, values: dict[str, list[float]]) -> None:
    print(f"{what}:")
    for name, v in values.items():
        print(f"  {name}: median {statistics.median(v):,.2f} ({', '.join(f'{x:,.2f}' for x in v)})")
    base, this = (statistics.median(values[k]) for k in ("base", "this"))
    print(f"  this / base: {this / base:.3f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base", type=Path, required=True, help="a checkout of the code to compare with")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--what", nargs="+", default=["dry-run", "latency"], choices=["dry-run", "latency"])
    args = p.parse_args()
    trees = {"base": args.base.resolve(), "this": HERE}
    if "dry-run" in args.what:
        dry_run(trees, args.rows, args.rounds)
    if "latency" in args.what:
        latency(trees, args.rounds)


if __name__ == "__main__":
    main()
